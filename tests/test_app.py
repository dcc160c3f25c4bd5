"""Every page of the app renders, and tiny jobs started from the pages run to their results (AppTest)."""
import json
import time

from streamlit.testing.v1 import AppTest

from conftest import ROOT
from distill_core.runs.store import RunStore

PAGES = {name: f"app_pages/{name}.py" for name in ("overview", "attack", "distill", "inspect", "compare")}


def open_app(page: str = "overview", **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    if page != "overview":
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def wait_until_ended(at: AppTest, timeout: float = 240) -> str:
    """Re-run the page (as the polling fragment would) until the job's status box says it ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        ended = [s.value for s in at.success] + [w.value for w in at.warning] + [e.value for e in at.error]
        if ended:
            return ended[0]
    raise AssertionError("the job did not end in time")


def test_every_page_renders_with_its_widgets():
    at = open_app()
    assert at.title[0].value == "Backdoor Distillation Lab"
    assert button(at, "Run the whole demo") and float(at.metric[0].value.rstrip("%")) >= 70
    assert "Device:" in at.sidebar.caption[0].value and at.sidebar.markdown[0].value == "**Jobs**"

    at = open_app("attack")
    for key in ("attack:demo:data", "attack:demo:downstream", "attack:demo:encoder", "attack:pattern", "attack:target"):
        assert at.selectbox(key=key).value
    assert at.radio(key="attack:name").options == ["BadEncoder", "DRUPE"]
    assert at.number_input(key="attack:demo:badencoder:epochs").value == 8 and button(at, "Run the attack")
    assert [h.value for h in at.subheader] == ["Data", "Clean encoder", "Attack", "Trigger", "Target"]
    assert len(at.get("image")) == 2  # the trigger's live preview and the reference gallery

    at = open_app("distill")
    assert "finetuned ★" in at.radio(key="distill:teacher").options
    assert at.radio(key="distill:loss").value == "at" and "at ★" in at.radio(key="distill:loss").options
    assert [n.label for n in at.number_input][:4] == ["layer1", "layer2", "layer3", "layer4"]
    assert button(at, "Run the distillation")
    assert at.radio(key="distill:placement").value == "authors"  # the presets run the study's defence code's
    assert [n.value for n in at.number_input][:4] == [1000.0] * 4
    at.radio(key="distill:loss").set_value("sp").run()
    at.radio(key="distill:placement").set_value("source").run()
    assert [n.value for n in at.number_input][:4] == [0.0, 0.0, 0.0, 3000.0]  # SP on the last stage only
    assert any("RepDistiller" in c.value for c in at.caption)
    at.radio(key="distill:placement").set_value("authors").run()
    assert [n.value for n in at.number_input][:4] == [0.0, 0.0, 0.0, 1.0]
    assert any("-cos of final embeddings" in c.value for c in at.caption)
    at.radio(key="distill:loss").set_value("at").run()
    at.radio(key="distill:student").set_value("poisoned-init").run()
    assert any("**NAD (at the run's placement)** (Li et al." in c.value for c in at.caption)  # the field's name
    at.selectbox(key="distill:defence").set_value("NAD").run()  # NAD as its source runs it, at the demo's scale
    assert [at.radio(key=f"distill:{f}").value for f in ("teacher", "student", "loss")] == [
        "finetuned", "poisoned-init", "at"]
    assert [n.value for n in at.number_input][:5] == [0.0, 0.0, 0.0, 5000.0, 0.0]  # layer4 at 5000, no extra term
    assert next(n for n in at.number_input if n.label == "Distillation epochs").value == 20 and any(
        "This is **NAD** (Li et al., ICLR 2021)" in c.value for c in at.caption)
    at.selectbox(key="distill:defence").set_value("MIMIC").run()
    assert [at.radio(key=f"distill:{f}").value for f in ("teacher", "student", "loss")] == [
        "poisoned", "scratch", "mimic"]
    assert any("mutual information" in c.value for c in at.caption)

    assert open_app("inspect").title[0].value == "Inspect: where do the encoders look?"
    assert open_app("compare").title[0].value == "Compare runs"


def test_a_tiny_story_runs_from_the_attack_and_distill_pages_to_results():
    at = open_app("attack")
    at.number_input(key="attack:demo:badencoder:epochs").set_value(1)
    at.number_input(key="attack:demo:badencoder:n_shadow").set_value(256)
    button(at.run(), "Run the attack").click().run()
    assert wait_until_ended(at).startswith("Done")
    cards = {m.label: m.value for m in at.metric}
    assert {"CA", "BA", "ASR-B", "ASR"} <= set(cards) and all(v.endswith("%") for v in cards.values())
    assert sum(c.value.startswith("true: ") for c in at.caption) == 16  # the triggered gallery

    at.switch_page(PAGES["distill"]).run()
    ours = next(r for r in RunStore().list() if r["kind"] == "attack" and not r.get("parent"))
    at.selectbox(key="distill:encoder").set_value(ours["path"])
    for key in ("distill:demo:own:epochs", "distill:demo:own:teacher_epochs", "distill:demo:own:warmup_epochs"):
        at.number_input(key=key).set_value(1)
    button(at.run(), "Run the distillation").click().run()
    assert wait_until_ended(at).startswith("Done")
    # the purified encoder's row, then its teacher alone (fine-tuning at the teacher's budget), and which did better
    assert [m.label for m in at.metric][-6:] == ["CA", "ASR", "ASR-all"] * 2 and at.metric[-6].delta.endswith("pts")
    assert any(m.value == "**Fine-tuning alone (the teacher)**" for m in at.markdown)
    said = next(r for r in RunStore().list() if r["kind"] == "distill" and not r.get("shipped"))["summary"]["verdict"]
    assert said.startswith(("Both removed", "Distillation removed", "Fine-tuning alone", "Neither"))
    assert said in [i.value for i in at.info]
    assert any(c.value.startswith("What ran: SimCLR + AT on every stage at 1000 each (authors)") for c in at.caption)
    assert [b.label for b in at.get("download_button")] == [
        "Purified encoder (.safetensors + sidecar)", "Results (JSON)", "Figures (CSV)"]

    # its teacher and warm-up student are kept for later runs, in a store folder that is not listed as a run
    assert len(list((RunStore().root / "prepared").glob("*.safetensors"))) == 2
    at.switch_page(PAGES["compare"]).run()
    table = at.dataframe[0].value
    assert {"attack", "distill"} <= set(table["kind"]) and table["CA %"].notna().any() and not at.warning
    at.switch_page(PAGES["inspect"]).run()
    distilled = next(r for r in RunStore().list() if r["kind"] == "distill" and not r.get("parent"))
    at.selectbox(key="inspect:story").set_value(distilled["path"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader] == ["Trigger-attention share", "Heat maps", "Embeddings", "Training film"]
    assert [m.label for m in at.metric] == ["Clean encoder", "Poisoned encoder", "Purified encoder"]
    assert at.selectbox(key=f"inspect:stage:{distilled['path']}").value == "layer3"  # 4 px maps after the demo encoder's stride-2 stem
    assert all(0 <= float(m.value.rstrip("%")) <= 100 for m in at.metric)
    assert len(at.get("image")) == 5  # the triggered images, three heat-map grids and the film frame
    film = at.select_slider(key="inspect:film")
    assert film.value == 1  # the last evaluation (demo preset: every 10 epochs and the last)
    film.set_value(-1).run()
    assert any(c.value.startswith("The poisoned encoder answers") for c in at.caption)


def test_the_demo_button_queues_a_job_that_a_reload_finds_and_cancel_stops():
    at = open_app()
    button(at, "Run the whole demo").click().run()
    tab = at.session_state["owner"]
    reloaded = open_app(lab=tab)  # a new session with the same URL
    assert any(i.value.startswith(("Starting", "Running", "Queued")) for i in reloaded.info)
    cancel = next(b for b in reloaded.button if b.label == "Cancel")
    cancel.click().run()
    assert wait_until_ended(reloaded, timeout=60) == "Cancelled."


def test_the_whole_demo_from_the_overview_reaches_its_cards(monkeypatch):
    from distill_core.presets import PRESETS
    tiny = {"attack_epochs": 1, "n_shadow": 256, "distill_epochs": 1, "teacher_epochs": 1, "warmup_epochs": 1,
            "n_clean": 256}
    monkeypatch.setitem(PRESETS["demo"], "pipeline", {**PRESETS["demo"]["pipeline"], **tiny})
    at = open_app()
    button(at, "Run the whole demo").click().run()
    assert wait_until_ended(at).startswith("Done")
    assert [m.label for m in at.metric][:12] == ["CA", "ASR-B", "ASR-all", "BA", "ASR", "ASR-all",
                                                *["CA", "ASR", "ASR-all"] * 2]
    assert any(m.value == "**Fine-tuning alone (the teacher)**" for m in at.markdown)  # beside the purified one
    assert any(c.value.startswith("What ran: SimCLR + ") for c in at.caption) and at.info
    assert sum(c.value.startswith("true: ") and "purified: " in c.value for c in at.caption) == 16


def test_a_second_tab_queues_behind_the_first_and_sees_its_place():
    first, second = open_app(), open_app()
    button(first, "Run the whole demo").click().run()
    button(second, "Run the whole demo").click().run()
    assert [i.value for i in second.info][-1].startswith("Queued: yours runs next on the ")
    sidebar = [c.value for c in second.sidebar.caption]  # drawn before the page, yet it shows the new job
    assert any("demo: queued · #1 in queue" in c for c in sidebar), sidebar
    assert any(c.startswith("Server: 1 running, 1 queued") for c in sidebar), sidebar
    for at in (second, first):
        next(b for b in at.button if b.label == "Cancel").click().run()
    assert wait_until_ended(second, timeout=60) == "Cancelled." and wait_until_ended(first, timeout=60) == "Cancelled."


def test_compare_shows_damaged_runs_and_distill_resumes_an_interrupted_one():
    from dataclasses import asdict

    from distill_core.presets import DEMO_ENCODER
    from distill_core.files import write_json
    from distill_core.runs.store import this_process
    from distill_core.tasks import make_config
    root = RunStore().root
    damaged = root / "19990101-000000-evaluate-feed01"
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text('{"kind": "evaluate", "sta')
    stopped = root / "19990101-000001-distill-feed02"  # a distillation whose server died while it ran
    cfg = make_config("distill", "demo", {"encoder": str(DEMO_ENCODER), "epochs": 2, "teacher_epochs": 1,
                                          "warmup_epochs": 1, "n_clean": 256, "eval_every": 0})
    write_json(stopped / "config.json", {"kind": "distill", "status": "running", "created": 0, "config": asdict(cfg),
                                         "writer": {**this_process(), "pid": 2**22 + 1}})

    at = open_app("compare")
    assert "cannot be read" in at.warning[0].value and damaged.name in at.warning[0].value
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[damaged.name, "status"] == "damaged" and "not valid JSON" in table.loc[damaged.name, "note"]
    assert table.loc[stopped.name, "status"] == "interrupted"

    at.switch_page(PAGES["distill"]).run()
    assert at.selectbox(key="distill:resume").value == str(stopped)
    button(at, "Resume").click().run()
    assert wait_until_ended(at).startswith("Done")
    assert json.loads((stopped / "config.json").read_text())["status"] == "done"


def test_compare_draws_a_sweeps_heatmaps_with_png_and_svg_downloads():
    from conftest import run_tiny_sweep
    path = run_tiny_sweep(RunStore().root)
    at = open_app("compare")
    assert at.selectbox(key="compare:sweep").value == path.name
    assert at.selectbox(key="compare:story").value == "badencoder → signs"
    assert any(c.value.startswith("Target **priority**") for c in at.caption)
    assert len(at.get("image")) == 6  # ASR and CA over teacher x loss, student x loss and loss x placement
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("PNG") == 6 and labels.count("SVG") == 6 and "All tables (Markdown)" in labels
    frames = [d.value for d in at.dataframe]
    by_loss = next(f for f in frames if "loss" in f.columns and "badencoder/signs CA" in f.columns)
    assert list(by_loss["loss"]) == ["at", "kd"]
    side = next(f for f in frames if "authors rank" in f.columns)  # the losses under each placement, side by side
    assert list(side["loss"]) == ["at", "kd"] and "source · badencoder/signs ASR" in side.columns
