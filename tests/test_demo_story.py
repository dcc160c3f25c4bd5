"""The pre-computed demo story the lab ships: listed read-only by the app's store, small, true to its summary,
and telling the story the demo promises."""
import pytest
import torch

from distill_core.demo_story import demo_speed, seconds_here
from distill_core.device import Runtime
from distill_core.inspect.attention import downstream_task
from distill_core.evaluate.features import extract_features
from distill_core.inspect.story import PROBES_FILE, load_story
from distill_core.presets import DEMO_ENCODER, STORIES
from distill_core.runs.store import RunStore
from distill_core.runs.table import describe, precomputed_note


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[RunStore, dict]:
    store = RunStore(tmp_path_factory.mktemp("runs"), shipped=(STORIES,))
    pipelines = [r for r in store.list() if r["kind"] == "pipeline"]
    assert len(pipelines) == 1, pipelines
    return store, pipelines[0]


def test_the_store_lists_it_read_only_after_the_users_own_runs(shipped):
    store, run = shipped
    listed = store.list()
    assert run["status"] == "done" and all(r["shipped"] for r in listed)
    assert {r.get("parent") for r in listed} == {None, run["id"]} and len(listed) == 3  # the pipeline and 2 stages
    note = precomputed_note(run)
    assert "python -m distill_core.demo_story" in note and "CPU" in note and run["precomputed"]["made"] in note
    assert "pre-computed" in describe(run)
    assert store.mark_interrupted() == [] and precomputed_note({**run, "shipped": False}) == ""
    store.root.mkdir(exist_ok=True)
    own = store.create("attack", {})
    own.finish("done")
    assert [r["id"] for r in store.list()][0] == own.id  # the user's own runs come first


def test_it_is_small_and_its_files_are_what_its_summary_says(shipped):
    _, run = shipped
    size = sum(f.stat().st_size for f in STORIES.rglob("*") if f.is_file())
    assert size <= 5 * 2**20, f"{size / 2**20:.1f} MB"
    story = load_story(run["path"])
    assert story.weights["clean"] == DEMO_ENCODER and set(story.weights) == {"clean", "poisoned", "distilled"}
    evaluator = downstream_task(story, Runtime.create("cpu", "fp32"))
    encoders = story.encoders()
    s = run["summary"]
    for role in ("poisoned", "distilled"):  # scored again here from the shipped weights
        ca = evaluator.score(encoders[role])["ca"]
        assert ca == pytest.approx(s[role]["ca"], abs=0.02), (role, ca, s[role]["ca"])


def test_it_tells_the_story_the_demo_promises(shipped):
    _, run = shipped
    s = run["summary"]
    assert s["poisoned"]["asr"] >= 0.95 and s["clean"]["ca"] - s["poisoned"]["ca"] <= 0.02
    assert s["distilled"]["asr"] <= s["clean"]["asr"] + 0.05 and s["distilled"]["ca"] >= s["clean"]["ca"] - 0.04


def test_it_sets_the_purified_student_beside_fine_tuning_alone_and_names_its_recipe(shipped):
    """The demo's teacher is fine-tuned lightly: alone it keeps a clear backdoor, which distillation removes."""
    _, run = shipped
    s = run["summary"]
    assert s["teacher"] == "finetuned" and s["teacher_scores"]["asr"] >= 0.30
    assert s["verdict"].startswith("Distillation removed the backdoor that fine-tuning alone (the teacher) left.")
    assert s["recipe"].startswith("SimCLR + AT on every stage at 1000 each (authors) + 300 x (1 - cos)")
    assert s["teacher_budget"] == {"epochs": 5, "lr": 5e-4}


def test_before_a_live_run_the_time_is_scaled_by_this_machines_measured_speed(shipped):
    _, run = shipped
    made = run["precomputed"]["passes_per_second"]
    assert seconds_here(run, 2 * made) == pytest.approx(run["summary"]["seconds"]["total"] / 2)
    assert 50 < demo_speed(Runtime.create("cpu", "fp32")) < 1e6  # image passes per second, measured


def test_inspects_probes_ship_with_it_and_equal_a_fresh_fit(shipped):
    _, run = shipped
    story = load_story(run["path"])
    evaluator, encoders = downstream_task(story, Runtime.create("cpu", "fp32")), story.encoders()
    key_file = story.folder / PROBES_FILE
    before = key_file.stat().st_mtime_ns
    kept = story.probes(evaluator, encoders)  # what the Inspect page asks for: loaded, not fitted nor written
    assert key_file.stat().st_mtime_ns == before and set(kept) == {"clean", "poisoned", "distilled"}
    features = extract_features(encoders["poisoned"], evaluator.test.images, evaluator.runtime)
    assert torch.equal(kept["poisoned"].predict(features), evaluator.fit(encoders["poisoned"]).predict(features))
