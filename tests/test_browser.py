"""The app in a real browser: `streamlit run app.py` headless, Chromium driven by Playwright.

Visits every page, runs a tiny story through the UI (attack, then distillation), checks that no error
element appears and that the result cards show numbers, and saves a screenshot of each page to
$DISTILL_SCREENSHOTS (default: the test's temporary folder).
"""
import os
import shutil
from pathlib import Path

import pytest

from browser import card_values, no_errors, run_to_done, set_number, settle, visit
from conftest import (CHROMIUM, CHROMIUM_FLAGS, CIFAR10_MINI, needs_chromium, needs_cifar10_mini, run_tiny_sweep,
                      streamlit_server)

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


@pytest.mark.timeout(900)  # about 1 min on the laptop profile
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
        if path == "":  # the story's cards before anything has run (the teacher alone beside the purified
            # student), and the shipped encoder's three
            assert len(card_values(page)) >= 12 and page.get_by_text("Fine-tuning alone (the teacher)", exact=True).count() == 1
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
    assert page.get_by_label("embedding", exact=True).input_value() == "300"  # the preset's final-embedding term
    for label in ("Distillation epochs", "Teacher fine-tune epochs", "Student warm-up epochs"):
        set_number(page, label, 1)
    run_to_done(page, "Run the distillation")
    no_errors(page)
    assert len(card_values(page)) >= 12 and page.get_by_text("Fine-tuning alone (the teacher)", exact=True).count() == 1
    assert page.get_by_text("What ran: SimCLR + AT on every stage").count() == 1
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
    assert page.locator('[data-testid="stImage"] img').count() == 6  # ASR and CA: teacher, student, placement x loss
    assert page.get_by_role("button", name="SVG").count() == 6
    page.screenshot(path=shots / "compare-sweep.png")


def small_photo_folder(root: Path, classes=("airplane", "automobile", "ship", "truck"), n_train=80, n_test=20) -> Path:
    """A few real CIFAR-10 photos per class in ImageFolder layout (copied, so the test cannot alter the sample)."""
    for split, n in (("train", n_train), ("test", n_test)):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for f in sorted((CIFAR10_MINI / split / name).iterdir())[:n]:
                shutil.copy(f, root / split / name / f.name)
    return root


def pick(page, box: str, option: str) -> None:
    page.get_by_role("combobox", name=box).click()  # a selectbox opens its list on click
    page.get_by_role("option", name=option).click()
    settle(page)


@needs_cifar10_mini
@pytest.mark.timeout(900)  # about 2 min on the laptop profile
def test_the_real_photo_setup_from_attack_to_inspect(server, page, shots, tmp_path):
    """Real photos through the UI: the setup starts from the shipped real-image encoder, a folder of photos is
    the shadow data and the downstream task, and the trigger preview, galleries, heat maps and embeddings show."""
    photos = small_photo_folder(tmp_path / "photos")
    visit(page, f"{server}/attack", "Attack: plant a backdoor")
    page.get_by_text("Real photos: CIFAR-10").click()
    settle(page)
    chosen = page.get_by_role("combobox", name="Encoder to poison").input_value()
    assert "Shipped real-image encoder" in chosen, chosen  # the setup's own encoder comes first
    pick(page, "Shadow data (the attacker's share of pre-training data)", "an image folder…")
    page.get_by_label("Folder with train/ and test/ class folders").first.fill(str(photos))
    page.keyboard.press("Enter")
    settle(page)
    pick(page, "Downstream task (where the backdoor should fire)", "an image folder…")
    page.get_by_label("Folder with train/ and test/ class folders").last.fill(str(photos))
    page.keyboard.press("Enter")
    settle(page)
    pick(page, "Target class", "truck")
    set_number(page, "Epochs", 2)
    set_number(page, "Shadow images", 256)
    no_errors(page)
    assert page.get_by_text("Live preview on downstream test images").count() == 1
    run_to_done(page, "Run the attack")
    no_errors(page)
    assert len(card_values(page)) >= 6 and page.get_by_text("true: ").count() >= 8  # cards and the gallery
    page.screenshot(path=shots / "attack-real-done.png")

    visit(page, f"{server}/distill", "Distill: wash the backdoor out")
    assert page.get_by_text("160 images").count() == 1  # half the folder's 320 photos: the most the slider gives
    assert page.get_by_label("embedding", exact=True).input_value() == "300"  # the preset's final-embedding term
    for label in ("Distillation epochs", "Teacher fine-tune epochs", "Student warm-up epochs"):
        set_number(page, label, 1)
    run_to_done(page, "Run the distillation")
    no_errors(page)
    assert len(card_values(page)) >= 12 and page.get_by_text("Fine-tuning alone (the teacher)", exact=True).count() == 1
    ran = page.get_by_text("What ran: SimCLR + AT on every stage")
    assert ran.count() == 1 and "300 x (1 - cos) on the final embedding (the lab's addition" in ran.inner_text()
    page.screenshot(path=shots / "distill-real-done.png")

    visit(page, f"{server}/inspect", "Inspect: where do the encoders look?")
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=120_000)  # the embedding view
    settle(page)
    no_errors(page)
    assert page.get_by_text("The purified encoder").count() >= 1  # the reading beside the share cards
    assert page.get_by_role("combobox", name="Stage (Grad-CAM)").input_value() == "layer3"  # photos' stage
    page.screenshot(path=shots / "inspect-real.png", full_page=True)
