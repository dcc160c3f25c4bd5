"""The job manager queues per device, runs jobs in worker processes, cancels, and survives failing and dying jobs."""
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from distill_core.runs.worker import in_worker
from distill_core.runs.jobs import JobManager
from distill_core.presets import DEMO_ENCODER
from distill_core.runs.store import RunStore
from distill_core.tasks import run_queued
from job_targets import with_test_tasks


class Gate:
    """A fake task runner: each job waits for its own release, records what ran, can fail or watch cancel."""

    def __init__(self):
        self.release, self.ran = {}, []

    def __call__(self, task, config, out, on_event, cancel, store, resume=False):
        self.ran.append(config.name)
        gate = self.release.setdefault(config.name, threading.Event())
        while not gate.wait(0.01):
            cancel.check()
        on_event({"kind": "step", "step": 1, "total": 1})
        if getattr(config, "fail", False):
            raise ValueError("epochs: must be at least 1, not 0")
        return out, {"name": config.name}

    def open(self, name):
        self.release.setdefault(name, threading.Event()).set()


def until(condition, timeout=5.0):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def gate():
    return Gate()


def test_one_slot_queues_jobs_in_order_and_reports_positions(tmp_path, gate):
    jobs = JobManager(gate, RunStore(tmp_path), slots=1)
    a, b, c = (jobs.submit("evaluate", SimpleNamespace(name=n, device="cpu"), owner="tab1") for n in "abc")
    until(lambda: gate.ran == ["a"])
    assert [a.status, b.status, c.status] == ["running", "queued", "queued"]
    assert [jobs.position(j) for j in (a, b, c)] == [0, 1, 2]
    gate.open("a")
    until(lambda: b.status == "running")
    assert a.status == "done" and a.summary == {"name": "a"} and jobs.position(c) == 1
    gate.open("b"), gate.open("c")
    until(lambda: c.status == "done")
    assert gate.ran == ["a", "b", "c"] and a.run_path.parent == tmp_path
    assert a.events[0]["kind"] == "step" and "t" in a.events[0]


def test_two_slots_run_two_jobs_at_once(tmp_path, gate):
    jobs = JobManager(gate, RunStore(tmp_path), slots=2)
    a, b, c = (jobs.submit("evaluate", SimpleNamespace(name=n, device="cpu")) for n in "abc")
    until(lambda: sorted(gate.ran) == ["a", "b"])
    assert c.status == "queued" and jobs.position(c) == 1
    for n in "abc":
        gate.open(n)
    until(lambda: c.status == "done")


def test_cancel_stops_a_running_job_quickly_and_a_queued_one_never_starts(tmp_path, gate):
    jobs = JobManager(gate, RunStore(tmp_path), slots=1)
    a, b = (jobs.submit("evaluate", SimpleNamespace(name=n, device="cpu")) for n in "ab")
    until(lambda: a.status == "running")
    jobs.cancel(b.id)
    assert b.status == "cancelled"
    t = time.time()
    jobs.cancel(a.id)
    jobs.wait(a.id, timeout=2)
    assert a.status == "cancelled" and time.time() - t < 2
    assert gate.ran == ["a"]  # b was taken off the queue before it started


def test_a_failing_job_is_marked_with_its_message_and_the_next_one_runs(tmp_path, gate):
    jobs = JobManager(gate, RunStore(tmp_path), slots=1)
    bad = jobs.submit("evaluate", SimpleNamespace(name="bad", fail=True, device="cpu"), owner="tab1")
    good = jobs.submit("evaluate", SimpleNamespace(name="good", device="cpu"), owner="tab2")
    gate.open("bad"), gate.open("good")
    until(lambda: good.status == "done")
    assert bad.status == "failed" and bad.error == "epochs: must be at least 1, not 0"
    assert [j.id for j in jobs.jobs("tab1")] == [bad.id] and [j.id for j in jobs.jobs()] == [good.id, bad.id]


def test_a_device_that_is_absent_is_refused_at_submission(tmp_path, gate):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        JobManager(gate, RunStore(tmp_path)).submit("evaluate", SimpleNamespace(name="x", device="cuda"))


def test_a_real_task_runs_to_done_and_leaves_its_record(tmp_path):
    from distill_core.runs.store import load_run
    from distill_core.tasks import make_config
    jobs = JobManager(in_worker(run_queued), RunStore(tmp_path))
    cfg = make_config("evaluate", "demo", {"device": "cpu", "n_downstream_train": 300, "n_downstream_test": 200})
    job = jobs.wait(jobs.submit("evaluate", cfg).id, timeout=120)
    assert job.status == "done", job.error
    record = load_run(job.run_path)
    assert record["status"] == "done" and record["summary"]["ca"] == job.summary["ca"] > 0.5


def test_cancel_stops_a_real_job_within_2_s_even_inside_an_evaluation(tmp_path):
    from distill_core.runs.store import load_run
    from distill_core.tasks import make_config
    # a probe of a million epochs: scoring the suspicious encoder alone would take hours
    cfg = make_config("distill", "demo", {"encoder": str(DEMO_ENCODER), "device": "cpu", "probe": "mlp",
                                          "probe_epochs": 10**6, "n_downstream_train": 200, "n_downstream_test": 100})
    jobs = JobManager(in_worker(run_queued), RunStore(tmp_path))
    job = jobs.submit("distill", cfg)
    until(lambda: any("clean images" in e.get("message", "") for e in job.events), timeout=60)  # set up; scoring
    time.sleep(1.0)
    t = time.time()
    jobs.cancel(job.id)
    jobs.wait(job.id, timeout=10)
    assert job.status == "cancelled" and time.time() - t <= 2.0
    assert load_run(job.run_path)["status"] == "cancelled"


def test_a_diverging_job_fails_with_a_clear_message_and_the_next_one_runs(tmp_path):
    from distill_core.tasks import make_config
    tiny = {"device": "cpu", "n_train": 256, "batch_size": 64, "epochs": 2, "width": 0.125,
            "n_downstream_train": 50, "n_downstream_test": 20}
    jobs = JobManager(in_worker(run_queued), RunStore(tmp_path))
    bad = jobs.submit("pretrain", make_config("pretrain", "demo", {**tiny, "lr": 1e30}))
    good = jobs.submit("pretrain", make_config("pretrain", "demo", tiny))
    jobs.wait(good.id, timeout=120)
    assert bad.status == "failed" and bad.error.startswith("training diverged") and "learning rate" in bad.error
    assert good.status == "done", good.error


def test_running_out_of_memory_fails_that_job_with_a_sentence_and_the_next_one_runs(tmp_path):
    from distill_core.tasks import make_config
    jobs = JobManager(in_worker(with_test_tasks), RunStore(tmp_path))
    cfg = make_config("evaluate", "demo", {"device": "cpu", "n_downstream_train": 300, "n_downstream_test": 200})
    bad, good = jobs.submit("oom", cfg), jobs.submit("evaluate", cfg)
    jobs.wait(good.id, timeout=120)
    assert bad.status == "failed" and bad.error.startswith("the device ran out of memory: lower the batch size")
    assert good.status == "done", good.error


@pytest.mark.parametrize("task, signal_name", [("segfault", "SIGSEGV"), ("killed", "SIGKILL")])
def test_a_job_that_dies_in_native_code_fails_alone_and_the_next_one_runs(tmp_path, task, signal_name):
    from distill_core.runs.store import load_run
    from distill_core.tasks import make_config
    jobs = JobManager(in_worker(with_test_tasks), RunStore(tmp_path))
    cfg = make_config("evaluate", "demo", {"device": "cpu", "n_downstream_train": 300, "n_downstream_test": 200})
    bad, good = jobs.submit(task, cfg), jobs.submit("evaluate", cfg)
    jobs.wait(good.id, timeout=120)
    assert bad.status == "failed" and bad.error.startswith(f"the job's process died (it was stopped by {signal_name}")
    assert any(e.get("message", "").startswith("about to") for e in bad.events)  # it ran, then died
    record = load_run(bad.run_path)
    assert record["status"] == "interrupted" and record["error"] == bad.error
    assert good.status == "done", good.error  # this process (the server) and its next job carry on


def test_a_cancelled_job_that_hangs_in_native_code_is_killed_after_the_grace(tmp_path, monkeypatch):
    from distill_core.runs import worker
    from distill_core.runs.store import load_run
    from distill_core.tasks import make_config
    monkeypatch.setattr(worker, "CANCEL_GRACE", 1.0)
    jobs = JobManager(in_worker(with_test_tasks), RunStore(tmp_path))
    job = jobs.submit("hang", make_config("evaluate", "demo", {"device": "cpu"}))
    until(lambda: any(e.get("message") == "hanging" for e in job.events), timeout=60)
    t = time.time()
    jobs.cancel(job.id)
    jobs.wait(job.id, timeout=10)
    assert job.status == "cancelled" and time.time() - t <= 3.0
    assert "did not stop within 1 s and was killed" in job.error
    record = load_run(job.run_path)
    assert record["status"] == "interrupted" and record["error"] == job.error


def test_jobs_reuse_a_warm_worker_until_it_dies_or_idles(tmp_path, monkeypatch):
    from distill_core.runs import worker
    from distill_core.tasks import make_config
    jobs = JobManager(in_worker(with_test_tasks), RunStore(tmp_path))
    cfg = make_config("evaluate", "demo", {"device": "cpu"})

    def pid(task="pid"):
        job = jobs.wait(jobs.submit(task, cfg).id, timeout=60)
        return next((e["message"] for e in job.events if e.get("message", "").startswith("pid ")), job.status)

    first = pid()
    assert first.startswith("pid ") and pid() == first  # the second job found the first one's worker
    assert pid("segfault") == "failed" and pid() != first  # a dead worker is replaced
    monkeypatch.setattr(worker, "IDLE_SECONDS", 0.2)
    warm = pid()
    gone = time.time() + 10  # idle 0.2 s, then the interpreter's exit: under a second here, more on a busy laptop
    while Path(f"/proc/{warm.split()[1]}").exists() and time.time() < gone:
        time.sleep(0.1)
    assert not Path(f"/proc/{warm.split()[1]}").exists()  # an idle worker exits, and is reaped (no zombie)
    assert pid() != warm
