"""Run rows, stories and the store's listing as the Compare and Distill pages use them."""

from distill_core.runs.store import RunStore
from distill_core.runs.table import attack_runs, describe, headline, row, stories

CLEAN, POISONED, PURE = {"ca": 0.977, "asr": 0.052}, {"ca": 0.972, "asr": 0.994}, {"ca": 0.952, "asr": 0.056}


def record(kind, summary=None, status="done", **config):
    return {"id": f"20261125-100000-{kind}-abcd", "kind": kind, "status": status, "created": 0.0,
            "config": config, "summary": summary}


def test_rows_show_the_produced_encoders_figures_in_percent():
    attack = row(record("attack", {"attack": "badencoder", "clean": CLEAN, "poisoned": POISONED,
                                   "seconds": {"total": 21.6}}, attack="badencoder"))
    assert (attack["CA %"], attack["ASR %"], attack["ASR-B %"], attack["seconds"]) == (97.2, 99.4, 5.2, 22)
    assert attack["teacher"] == ""
    distill = row(record("distill", {"teacher": "finetuned", "loss": "at", "poisoned": POISONED, "distilled": PURE}))
    assert (distill["CA %"], distill["ASR %"], distill["teacher"]) == (95.2, 5.6, "finetuned")
    running = row(record("distill", None, status="running", teacher="pruned"))
    assert running["CA %"] is None and running["teacher"] == "pruned"
    assert headline(record("pretrain", {"ca_simclr": 0.5})) == {"ca": 0.5}


def test_stories_keep_finished_top_level_runs_with_their_roles():
    runs = [record("pipeline", {"attack": "badencoder", "clean": CLEAN, "poisoned": POISONED, "distilled": PURE}),
            {**record("attack", {"clean": CLEAN, "poisoned": POISONED}), "parent": "x"},
            record("attack", {"attack": "drupe", "clean": CLEAN, "poisoned": POISONED}, status="failed"),
            record("pretrain", {"ca_simclr": 0.5})]
    [story] = stories(runs)
    assert story["clean"] == CLEAN and story["distilled"] == PURE and story["label"] == "badencoder"
    assert attack_runs(runs) == [runs[1]]  # a pipeline's attack stage can be distilled again
    assert "CA 97.2% · ASR 99.4%" in describe(runs[1])


def test_store_lists_pipeline_stages_after_their_pipeline_and_damaged_records_as_such(tmp_path):
    store = RunStore(tmp_path)
    pipe = store.create("pipeline", {})
    store.create("attack", {}, pipe.file("attack")).finish("done", {"poisoned": POISONED})
    pipe.finish("done", {})
    broken = tmp_path / "20991231-000000-distill-dead"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    listed = store.list()
    assert [(r["kind"], r["status"], r.get("parent")) for r in listed] == [
        ("distill", "damaged", None), ("pipeline", "done", None), ("attack", "done", pipe.id)]
    assert listed[2]["summary"]["poisoned"] == POISONED
    assert row(listed[0])["note"].startswith("config.json is not valid JSON")
