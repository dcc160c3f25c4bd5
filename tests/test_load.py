"""A class at once: 20 browser sessions against one local server, each starting a tiny attack.

Every job completes, one at a time and in the order submitted (one slot per device); each session sees only
its own job and its own run's figures; the server's health endpoint answers throughout; its peak memory is
reported (and bounded). The figures are printed for the notes (`pytest -s tests/test_load.py`).
"""
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from browser import card_values, no_errors, set_number, visit
from conftest import CHROMIUM, CHROMIUM_FLAGS, needs_chromium, streamlit_server
from distill_core.runs.store import RunStore
from webui.widgets import pct

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, needs_chromium]

SESSIONS = 20
MAX_RSS_GB = 4.0  # the server alone; one demo pipeline peaks at ~1.5 GB


class HealthProbe(threading.Thread):
    """Asks the server's health endpoint every quarter second; keeps the answers' latencies and failures."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.latencies, self.failures, self.stop = f"{url}/_stcore/health", [], [], threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    assert answer.status == 200
                self.latencies.append(time.perf_counter() - t)
            except Exception as e:  # noqa: BLE001 - any failure to answer counts
                self.failures.append(repr(e))


def peak_rss_gb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(1500)  # about 3.5 min on the laptop profile
def test_twenty_sessions_each_run_a_tiny_attack(tmp_path):
    runs = tmp_path / "runs"
    with streamlit_server(runs, tmp_path / "streamlit.log", DISTILL_JOBS_PER_DEVICE="1") as (url, server), \
            playwright.sync_playwright() as p:
        health = HealthProbe(url)
        health.start()
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        pages, submitted = [], {}
        t0 = time.time()
        for i in range(SESSIONS):  # each session its own browser context (cookies, storage) and tab id
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()  # a laptop's screen
            visit(page, f"{url}/attack?lab=session{i}", "Attack: plant a backdoor")
            set_number(page, "Epochs", 1)
            set_number(page, "Shadow images", 256 + i)  # tells the sessions' runs apart
            page.get_by_role("button", name="Run the attack").click()
            submitted[256 + i] = time.time()
            pages.append(page)
        for page in pages:
            page.get_by_text("Done in").wait_for(timeout=600_000)
        wall = time.time() - t0
        time.sleep(1)
        shown = []
        for page in pages:
            no_errors(page)
            shown.append(card_values(page))
            jobs = page.locator('[data-testid="stSidebar"]').get_by_text("attack: ")
            assert jobs.count() == 1, jobs.all_inner_texts()  # its own job, no one else's
        health.stop.set()
        health.join()
        rss = peak_rss_gb(server.pid)
        browser.close()

    records = sorted(RunStore(runs).list(), key=lambda r: r["created"])
    assert len(records) == SESSIONS and {r["status"] for r in records} == {"done"}
    order = [r["config"]["n_shadow"] for r in records]
    assert order == sorted(submitted)  # started in the order they were submitted
    for before, after in zip(records, records[1:]):
        assert after["created"] >= before["finished"] - 0.5  # one at a time: each starts as the previous ends
    by_session = {r["config"]["n_shadow"]: r["summary"] for r in records}
    for i, values in enumerate(shown):  # every session shows its own run's figures
        s = by_session[256 + i]
        assert values[:6] == [pct(s[role][k]) for role in ("clean", "poisoned") for k in ("ca", "asr", "asr_all")]
    waits = [r["created"] - submitted[r["config"]["n_shadow"]] for r in records]
    print(f"\nload: {SESSIONS} sessions, {len(records)} jobs done in {wall:.0f} s; longest queue wait {max(waits):.0f} s; "
          f"job time {min(r['summary']['seconds']['total'] for r in records):.1f}-"
          f"{max(r['summary']['seconds']['total'] for r in records):.1f} s; server peak RSS {rss:.2f} GB; health "
          f"{len(health.latencies)} answers, slowest {max(health.latencies):.2f} s, {len(health.failures)} failures")
    assert not health.failures and len(health.latencies) >= wall * 2
    assert rss < MAX_RSS_GB
