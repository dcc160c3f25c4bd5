"""The app served headless and a Chromium to drive it: what the page benchmark and the browser tests share."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `playwright install` needs a download
# without the network flags Chromium floods a closed network with update and sync requests
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(runs: Path, log: Path, **env: str):
    """`streamlit run app.py` headless on a free port with its own run store; yields (url, process)."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.headless", "true", "--server.fileWatcherType", "none"], cwd=ROOT,
                                env={**os.environ, "DISTILL_RUNS": str(runs), **env}, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")
            yield url, proc
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def fresh_app_page():
    """A Chromium page (1400x2400) and the URL of a fresh server whose run store holds only the pre-computed story:
    what a class sees when it first opens the app. Yields (url, page)."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp, streamlit_server(Path(tmp) / "runs", Path(tmp) / "log") as (url, _), \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield url, browser.new_page(viewport={"width": 1400, "height": 2400})
        finally:
            browser.close()
