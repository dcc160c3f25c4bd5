"""The app in a real browser: `streamlit run app.py` headless, Chromium driven by Playwright.

Visits every page, runs a tiny story through the UI (attack, then distillation), checks that no error
element appears and that the result cards show numbers, and saves a screenshot of each page to
$DISTILL_SCREENSHOTS (default: the test's temporary folder).
"""
import os
from pathlib import Path

import pytest

from browser import card_values, no_errors, run_to_done, set_number, settle, visit
from conftest import CHROMIUM, CHROMIUM_FLAGS, needs_chromium, run_tiny_sweep, streamlit_server

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    with streamlit_server(runs, tmp_path_factory.mktemp("log") / "streamlit.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser.new_page(viewport={"width": 1400, "height": 2400})
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DISTILL_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.timeout(900)  # about 3 min on the laptop profile
def test_every_page_and_a_tiny_story_in_a_real_browser(server, runs, page, shots):
    # a fresh server with an empty run store: the pre-computed story is there, and says so
    for path, title, last in [("", "Backdoor Distillation Lab", "Pre-training time"),
                              ("attack", "Attack: plant a backdoor", "Run the attack"),
                              ("distill", "Distill: wash the backdoor out", "Run the distillation"),
                              ("inspect", "Inspect: where do the encoders look?", "answers:"),
                              ("compare", "Compare runs", "Up and to the left is better")]:
        visit(page, f"{server}/{path}", title)
        page.get_by_text(last).first.wait_for(timeout=120_000)  # the page's last element: it rendered whole
        settle(page)
        no_errors(page)
        assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Distill").count() == 1
        if path in ("", "inspect", "compare"):
            note = page.get_by_text("Pre-computed story, shipped with the lab: made by").first.inner_text()
            assert "python -m distill_core.demo_story" in note and "CPU" in note, note
        if path == "":  # the story's six cards before anything has run, and the shipped encoder's three
            assert len(card_values(page)) >= 9
        page.screenshot(path=shots / f"{path or 'overview'}-fresh.png")

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

    run_tiny_sweep(runs)  # as a researcher's CLI sweep would, into the same store
    visit(page, f"{server}/compare", "Compare runs")
    page.get_by_role("tab", name="Sweep heatmaps").click()
    page.get_by_text("Tables (mean ± std over seeds)").wait_for(timeout=60_000)
    settle(page)
    no_errors(page)
    assert page.locator('[data-testid="stImage"] img').count() == 4  # ASR and CA, teacher x loss and student x loss
    assert page.get_by_role("button", name="SVG").count() == 4
    page.screenshot(path=shots / "compare-sweep.png")
