"""The app served headless and a Chromium to drive it: what the page benchmark and the browser tests share."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
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
