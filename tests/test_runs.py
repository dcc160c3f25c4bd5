import json
import os
import subprocess
import sys
import time

import pytest

from distill_core.events import CancelToken, Cancelled
from conftest import ROOT
from distill_core.files import write_json
from distill_core.runs.store import RunStore, load_run, read_events, this_process
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
    cfg = make_config("pretrain", "demo", {"n_train": 64, "batch_size": 16, "epochs": 2, "log_every": 1,
                                           "n_downstream_train": 50, "n_downstream_test": 20, "width": 0.125})
    with pytest.raises(Cancelled):  # cancelled after its first step: the weights it has are kept
        run_task("pretrain", cfg, out=tmp_path / "stop", cancel=token,
                 on_event=lambda e: e["kind"] == "step" and token.cancel())
    rec = load_run(tmp_path / "stop")
    assert rec["status"] == "cancelled" and (tmp_path / "stop" / "encoder.safetensors").is_file()
    assert [e["step"] for e in read_events(tmp_path / "stop") if e["kind"] == "step"] == [1]


def test_presets_layer_over_reference_defaults():
    ref = make_config("pretrain")
    assert (ref.data, ref.width, ref.epochs, ref.batch_size, ref.temperature) == ("cifar10", 1.0, 1000, 256, 0.5)
    demo = make_config("pretrain", "demo", {"epochs": 3})
    assert (demo.data, demo.downstream, demo.width, demo.epochs) == ("shapes", "signs", 0.25, 3)
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("pretrain", "nope")


WRITER = """
import random, sys
import distill_core.runs.store as runs
runs.new_run_id = lambda kind: f"{kind}-{random.randrange(1000):03d}"  # a small id space: names do collide
store = runs.RunStore(sys.argv[1])
for i in range(40):
    run = store.create("demo", {"writer": sys.argv[2], "i": i})
    for step in range(20):
        run({"kind": "step", "step": step, "writer": sys.argv[2]})
    run.finish("done", {"writer": sys.argv[2], "i": i})
"""


def test_two_processes_writing_runs_at_once_never_share_or_corrupt_one(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name], cwd=ROOT) for name in "ab"]
    seen = []
    while any(p.poll() is None for p in procs):  # a reader listing all the while sees only whole records
        seen += [r["status"] for r in RunStore(tmp_path).list()]
    assert [p.wait() for p in procs] == [0, 0] and "damaged" not in seen
    runs = RunStore(tmp_path).list()
    assert len(runs) == 80 and {r["status"] for r in runs} == {"done"}
    for r in runs:
        writer = r["config"]["writer"]
        assert r["summary"] == {"writer": writer, "i": r["config"]["i"]}
        assert [(e["step"], e["writer"]) for e in read_events(r["path"])] == [(s, writer) for s in range(20)]


def test_damaged_run_folders_are_listed_with_the_reason(tmp_path):
    store = RunStore(tmp_path)
    good = store.create("attack", {})
    good.finish("done", {"ca": 0.9})
    half = tmp_path / "20260101-000000-distill-aaaaaa"
    half.mkdir()  # half-created: no record at all...
    os.utime(half, (time.time() - 120,) * 2)  # ...and not just being created
    (tmp_path / "20260101-000003-distill-dddddd").mkdir()  # being created right now: not listed yet
    cut = tmp_path / "20260101-000001-attack-bbbbbb"
    cut.mkdir()
    (cut / "config.json").write_text('{"kind": "attack", "status": "do')
    odd = tmp_path / "20260101-000002-pretrain-cccccc"
    odd.mkdir()
    (odd / "config.json").write_text("[1, 2]")
    bad_summary = store.create("evaluate", {})
    bad_summary.finish("done")
    (bad_summary.path / "summary.json").write_bytes(b"\xff\xfe")
    for folder in ("uploads", "prepared"):  # the store's own folders, long there: not runs, not damaged
        (tmp_path / folder).mkdir()
        os.utime(tmp_path / folder, (time.time() - 120,) * 2)

    runs = {r["id"]: r for r in store.list()}
    assert len(runs) == 5 and runs[good.id]["status"] == "done"
    damaged = {i: r for i, r in runs.items() if r["status"] == "damaged"}
    assert set(damaged) == {cut.name, odd.name, "20260101-000000-distill-aaaaaa", bad_summary.id}
    assert "config.json is missing" in damaged["20260101-000000-distill-aaaaaa"]["error"]
    assert "config.json is not valid JSON" in damaged[cut.name]["error"] and damaged[cut.name]["kind"] == "attack"
    assert "not a run record" in damaged[odd.name]["error"]
    assert "summary.json" in damaged[bad_summary.id]["error"]


def test_a_run_whose_writer_is_gone_is_interrupted_and_a_live_one_is_not(tmp_path):
    store = RunStore(tmp_path)
    live = store.create("distill", {})  # written by this very process, still running
    dead = store.create("distill", {})
    dead.record["writer"] = {**this_process(), "pid": 2**22 + 1}  # no such process
    write_json(dead.path / "config.json", dead.record)
    remote = store.create("distill", {})
    remote.record["writer"] = {**this_process(), "host": "elsewhere"}  # another host's process: not judged
    write_json(remote.path / "config.json", remote.record)
    reused = store.create("distill", {})
    reused.record["writer"] = {**this_process(), "started": "1"}  # our pid, but a process started earlier
    write_json(reused.path / "config.json", reused.record)

    status = {r["id"]: r["status"] for r in store.list()}
    assert status == {live.id: "running", dead.id: "interrupted", remote.id: "running", reused.id: "interrupted"}
    assert sorted(store.mark_interrupted()) == sorted([dead.id, reused.id])
    assert load_run(dead.path)["status"] == "interrupted" and store.mark_interrupted() == []
