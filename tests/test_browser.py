"""The app in a real browser: `streamlit run app.py` headless, Chromium driven by Playwright.

Visits every page, runs a tiny story through the UI (attack, then distillation), checks that no error
element appears and that the result cards show numbers, and saves a screenshot of each page to
$DISTILL_SCREENSHOTS (default: the test's temporary folder).
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed (.ci/run installs it)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port, runs = free_port(), tmp_path_factory.mktemp("runs")
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env={**os.environ, "DISTILL_RUNS": str(runs)}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser.new_page(viewport={"width": 1400, "height": 2400})
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DISTILL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def visit(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title).wait_for(timeout=60_000)
    settle(page)


def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def run_to_done(page, button: str, timeout_s: float = 300) -> None:
    page.get_by_role("button", name=button).click()
    page.get_by_text("Done in").wait_for(timeout=timeout_s * 1000)
    settle(page)


def card_values(page) -> list[str]:
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()


def test_every_page_and_a_tiny_story_in_a_real_browser(server, page, shots):
    for path, title, last in [("", "Backdoor Distillation Lab", "Pre-training time"),
                              ("attack", "Attack: plant a backdoor", "Run the attack"),
                              ("distill", "Distill: wash the backdoor out", "Run the distillation"),
                              ("inspect", "Inspect: where do the encoders look?", "No finished story yet"),
                              ("compare", "Compare runs", "No runs yet")]:
        visit(page, f"{server}/{path}", title)
        page.get_by_text(last).first.wait_for(timeout=60_000)  # the page's last element: it rendered whole
        no_errors(page)
        assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Distill").count() == 1
        page.screenshot(path=shots / f"{path or 'overview'}-empty.png")

    visit(page, f"{server}/attack", "Attack: plant a backdoor")
    set_number(page, "Epochs", 1)
    set_number(page, "Shadow images", 256)
    run_to_done(page, "Run the attack")
    no_errors(page)
    values = card_values(page)
    assert len(values) >= 6 and all(v.endswith("%") and float(v.rstrip("%")) >= 0 for v in values[:6])
    page.screenshot(path=shots / "attack-done.png")

    visit(page, f"{server}/distill", "Distill: wash the backdoor out")
    for label in ("Distillation epochs", "Teacher fine-tune epochs", "Student warm-up epochs"):
        set_number(page, label, 1)
    run_to_done(page, "Run the distillation")
    no_errors(page)
    assert len(card_values(page)) >= 9
    assert page.get_by_role("button", name="Purified encoder (.safetensors + sidecar)").count() == 1
    page.screenshot(path=shots / "distill-done.png")

    visit(page, f"{server}/inspect", "Inspect: where do the encoders look?")
    page.get_by_role("heading", name="Training film").wait_for(timeout=120_000)
    settle(page)
    no_errors(page)
    assert page.locator('[data-testid="stMetricValue"]').count() == 3
    assert page.locator('[data-testid="stImage"] img').count() >= 5  # triggered images, 3 heat maps, the film
    page.screenshot(path=shots / "inspect-story.png")
    page.get_by_role("slider").last.focus()
    page.keyboard.press("Home")  # the film's first frame: the poisoned encoder
    page.get_by_text("The poisoned encoder answers").wait_for(timeout=60_000)
    no_errors(page)
    page.screenshot(path=shots / "inspect-film-start.png")

    visit(page, f"{server}/compare", "Compare runs")
    no_errors(page)
    page.locator('[data-testid="stPlotlyChart"]').wait_for(timeout=30_000)
    page.screenshot(path=shots / "compare-story.png")
