"""Same seed, same result; a distillation killed mid-run is found `interrupted` and resumes, from its last
checkpoint, to exactly the result of a run that was never stopped; so does a cancelled one."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT
from distill_core.data.triggers import make_trigger
from distill_core.distill.state import STATE_FILE
from distill_core.presets import DEMO_ENCODER
from distill_core.runs.jobs import JobManager
from distill_core.runs.store import RunStore, load_run, read_events
from distill_core.runs.worker import in_worker
from distill_core.tasks import make_config, resume_task, run_queued, run_task

SMALL = dict(n_clean=128, batch_size=32, epochs=6, teacher_epochs=1, warmup_epochs=1, eval_every=2, probe="linear",
             n_downstream_train=200, n_downstream_test=100, checkpoint_every=0, device="cpu")
STOP_AT = 3  # the epoch after which the second process is killed / the job cancelled


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """An attack-run-like folder (encoder + trigger.npz), so the resumed run also carries a training film."""
    folder = tmp_path_factory.mktemp("story")
    shutil.copy(DEMO_ENCODER, folder / "encoder.safetensors")
    shutil.copy(DEMO_ENCODER.with_suffix(".json"), folder / "encoder.json")
    make_trigger("white", 32).save_npz(folder / "trigger.npz")
    return folder


@pytest.fixture(scope="module")
def config(story):
    return make_config("distill", "demo", {"encoder": str(story), **SMALL})


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory):
    path, summary = run_task("distill", config, out=tmp_path_factory.mktemp("runs") / "whole")
    return path, summary


def outcome(path, summary) -> dict:
    """Everything a run's result is judged by: figures, curves, best epoch, and the weights themselves."""
    weights = load_file(str(path / "encoder.safetensors"))
    return {"figures": {k: summary[k] for k in ("poisoned", "teacher_scores", "distilled", "best", "curves")},
            "weights": weights}


def same(a: dict, b: dict) -> bool:
    return a["figures"] == b["figures"] and same_weights(a["weights"], b["weights"])


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def epochs_of(run) -> list[int]:
    """The distillation epochs a run's events (or its folder's) report as finished."""
    events = list(run) if isinstance(run, list) else read_events(run)
    return [e["epoch"] for e in events if e["kind"] == "epoch" and e.get("phase") == "distill"]


def test_the_same_seed_and_config_give_identical_metrics_and_weights(config, uninterrupted, tmp_path):
    again = run_task("distill", config, out=tmp_path / "again")
    assert same(outcome(*uninterrupted), outcome(*again))
    assert not (uninterrupted[0] / STATE_FILE).exists()  # a finished run keeps no resume state
    other = run_task("distill", make_config("distill", "demo", {**config.__dict__, "seed": 1}), out=tmp_path / "seed1")
    assert not same(outcome(*uninterrupted), outcome(*other))  # and the seed does matter


def test_live_estimates_leave_the_training_untouched(config, uninterrupted, tmp_path):
    """Presets choose how often to estimate by its cost alone: estimating every epoch, or never, trains the
    very same student."""
    weights = outcome(*uninterrupted)["weights"]
    for every in (1, 0):
        path, summary = run_task("distill", make_config("distill", "demo", {**vars(config), "eval_every": every}),
                                 out=tmp_path / f"every-{every}")
        assert len(summary["curves"]) == (config.epochs + 1 if every else 0)
        assert same_weights(weights, outcome(path, summary)["weights"])


KILL_AT_EPOCH = f"""
import os, signal, sys
from distill_core.tasks import make_config, run_task
cfg = make_config("distill", "demo", {{"encoder": sys.argv[1], **{SMALL!r}}})
def die(event):  # a hard kill: no finally, no record written, like a crashed or restarted server
    if event.get("phase") == "distill" and event.get("kind") == "epoch" and event.get("epoch") == {STOP_AT}:
        os.kill(os.getpid(), signal.SIGKILL)
run_task("distill", cfg, out=sys.argv[2], on_event=die)
"""


def test_a_killed_distillation_is_marked_interrupted_and_resumes_to_the_same_result(story, uninterrupted, tmp_path):
    store = RunStore(tmp_path)
    run = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILL_AT_EPOCH, str(story), str(run)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["status"] == "running"  # what the dead process left
    assert store.list()[0]["status"] == "interrupted"

    manager = JobManager(in_worker(run_queued), store)  # a server starting up records it
    assert manager.interrupted == ["killed"] and load_run(run)["status"] == "interrupted"
    assert "process stopped" in load_run(run)["error"]

    job = manager.wait(manager.resume(run, owner="me").id, timeout=120)
    assert job.status == "done", job.error
    assert same(outcome(*uninterrupted), outcome(run, job.summary))
    assert epochs_of(run) == [0, *range(1, SMALL["epochs"] + 1)]  # one unbroken record, no epoch twice
    # killed as epoch 3 ended, before its checkpoint: epoch 3 is trained again, from epoch 2's state
    assert [e["message"] for e in read_events(run) if "resumed" in e.get("message", "")] == \
        [f"resumed after epoch {STOP_AT - 1} of {SMALL['epochs']}"]
    rec = load_run(run)
    assert rec["status"] == "done" and len(rec["resumed"]) == 1 and "error" not in rec
    with pytest.raises(ValueError, match="only interrupted or cancelled"):
        resume_task(run)


def test_a_cancelled_distillation_keeps_events_and_checkpoint_and_resumes_from_the_cli(config, uninterrupted, tmp_path):
    manager = JobManager(in_worker(run_queued), RunStore(tmp_path))
    job = manager.submit("distill", config, owner="me")
    while STOP_AT not in epochs_of(job.events):
        assert job.active, job.error
        time.sleep(0.01)
    manager.cancel(job.id)
    manager.wait(job.id, timeout=10)
    rec = load_run(job.run_path)
    assert job.status == rec["status"] == "cancelled"
    assert (job.run_path / "encoder.safetensors").is_file() and (job.run_path / STATE_FILE).is_file()
    assert STOP_AT in epochs_of(job.run_path)

    cli = subprocess.run([sys.executable, "-m", "distill_core", "resume", str(job.run_path), "--quiet"], cwd=ROOT,
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr[-2000:]
    summary = json.loads(cli.stdout.strip().splitlines()[-1])
    assert same(outcome(*uninterrupted), outcome(job.run_path, summary))
    assert epochs_of(job.run_path) == [0, *range(1, SMALL["epochs"] + 1)]


def test_only_stopped_distillations_can_be_resumed(uninterrupted, tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        resume_task(tmp_path)
    with pytest.raises(ValueError, match="is done"):
        JobManager(in_worker(run_queued), RunStore(tmp_path)).resume(uninterrupted[0])
    attack = RunStore(tmp_path).create("attack", {})
    attack.finish("cancelled")
    with pytest.raises(ValueError, match="only distill and sweep runs"):
        resume_task(attack.path)


@pytest.mark.parametrize("measured", [{"defence": "MIMIC", "mi_epochs": 2}, {"loss": "cc", "calibrate": True}])
def test_a_resumed_run_keeps_the_weights_it_measured_and_ends_as_an_unbroken_one(story, tmp_path, measured):
    """MIMIC's mutual-information weights and both calibrations are measured once, kept in the checkpoint and
    restored on resume (not measured again), to the result of a run that was never stopped."""
    from distill_core.events import CancelToken
    from distill_core.events import Cancelled
    cfg = make_config("distill", "demo", {"encoder": str(story), **SMALL, **measured, "eval_every": 0})
    whole = run_task("distill", cfg, out=tmp_path / "whole")
    token = CancelToken()
    stop = lambda e: token.cancel() if e.get("kind") == "epoch" and e.get("epoch") == STOP_AT else None
    with pytest.raises(Cancelled):
        run_task("distill", cfg, out=tmp_path / "stopped", cancel=token, on_event=stop)
    path, summary = resume_task(tmp_path / "stopped")
    assert same(outcome(*whole), outcome(path, summary))
    assert summary["weighing"] == whole[1]["weighing"] and summary["calibration"] == whole[1]["calibration"]
    if measured.get("calibrate"):
        assert [c["when"] for c in summary["calibration"]] == ["at the start", "after the first epoch"]
        assert summary["weights"] == summary["calibration"][-1]["weights"]
    else:
        weighings = [e for e in read_events(path) if "measuring its stage weights" in e.get("message", "")]
        assert len(weighings) == 1 and summary["weights"] == summary["weighing"]["weights"]
