import json

import pytest

from distill_core.runs.events import CancelToken, Cancelled
from distill_core.runs.store import RunStore, load_run, read_events, write_json
from distill_core.tasks import TaskFailed, make_config, run_task


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    write_json(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_run_records_events_status_and_listener(tmp_path):
    seen = []
    run = RunStore(tmp_path).create("demo", {"a": 1}, listener=seen.append)
    run({"kind": "step", "step": 1})
    run.finish("done", {"score": 0.5})
    rec = load_run(run.path)
    assert rec["status"] == "done" and rec["summary"] == {"score": 0.5} and rec["config"] == {"a": 1}
    assert [e["step"] for e in read_events(run.path)] == [1] and seen == [{"kind": "step", "step": 1}]
    with open(run.path / "events.jsonl", "a") as f:
        f.write('{"kind": "step", "st')  # a half-written line is skipped, not fatal
    assert len(read_events(run.path)) == 1
    assert [r["id"] for r in RunStore(tmp_path).list()] == [run.id]


def test_failed_and_cancelled_tasks_leave_records(tmp_path):
    bad = make_config("pretrain", "demo", {"epochs": -1})
    with pytest.raises(TaskFailed, match="epochs") as info:
        run_task("pretrain", bad, out=tmp_path / "bad")
    assert load_run(info.value.run_path)["status"] == "failed"
    assert "epochs" in load_run(info.value.run_path)["error"]

    token = CancelToken()
    token.cancel()
    cfg = make_config("pretrain", "demo", {"n_train": 64, "batch_size": 32, "epochs": 1,
                                           "n_downstream_train": 50, "n_downstream_test": 20, "width": 0.125})
    with pytest.raises(Cancelled):
        run_task("pretrain", cfg, out=tmp_path / "stop", cancel=token)
    rec = load_run(tmp_path / "stop")
    assert rec["status"] == "cancelled" and (tmp_path / "stop" / "encoder.safetensors").is_file()


def test_presets_layer_over_reference_defaults():
    ref = make_config("pretrain")
    assert (ref.data, ref.width, ref.epochs, ref.batch_size, ref.temperature) == ("cifar10", 1.0, 1000, 256, 0.5)
    demo = make_config("pretrain", "demo", {"epochs": 3})
    assert (demo.data, demo.downstream, demo.width, demo.epochs) == ("shapes", "signs", 0.25, 3)
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("pretrain", "nope")
