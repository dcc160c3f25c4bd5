"""Background jobs: engine tasks run in worker processes, queued per device, watched by polling.

The app holds one `JobManager` per server process. A page submits a task and keeps only the job's id; the
manager runs it in a worker process (`worker.py`: a crash in native code fails the job, not the server), watched
by a watcher thread that keeps its events in memory for live views; the run store keeps the record on disk.
At most `slots` jobs run at once per device: on a shared box a class queues instead of running thirty
trainings over each other (on a 2-core CPU even two concurrent trainings slow each other several-fold), and
each user can see their place in the queue.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..device import resolve_device
from ..events import CancelToken, Cancelled, Event
from .registry import resumable
from .store import RunStore, new_run_id
from .worker import Runner

ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    task: str
    config: object
    owner: str
    label: str
    device: str
    run_path: Path
    resume: bool = False            # carry on the run at run_path instead of starting one
    status: str = "queued"          # queued -> running -> done | failed | cancelled
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    summary: dict | None = None
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    cancel_token: CancelToken = field(default_factory=CancelToken)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def record(self, event: Event) -> None:
        self.events.append({"t": time.time(), **event})  # list.append is atomic: readers never lock


class JobManager:
    """Queue, run and watch tasks. `slots` jobs at once per device; `runner` runs one: the app's is
    `in_worker(tasks.run_queued)`, each job in a worker process (tests pass others with the same signature, run in
    the watcher thread itself). The catalogue (`tasks`) is loaded by whoever owns the manager."""

    def __init__(self, runner: Runner, store: RunStore | None = None, slots: int = 1):
        self.store = store or RunStore()
        self.slots = max(1, slots)
        self._runner = runner
        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.interrupted = self.store.mark_interrupted()

    def submit(self, task: str, config, owner: str = "", label: str = "") -> Job:
        """Queue `task` with `config`; it starts as soon as its device has a free slot."""
        return self._queue(task, config, owner, label, self.store.root / new_run_id(task))

    def resume(self, run_path: Path | str, owner: str = "", label: str = "") -> Job:
        """Queue an interrupted or cancelled run to carry on from its last checkpoint (ValueError if it cannot)."""
        run_path = Path(run_path)
        if any(j.active and j.run_path == run_path for j in self._jobs.values()):
            raise ValueError(f"{run_path.name} is already queued or running.")
        task, config = resumable(run_path)
        return self._queue(task, config, owner, label, run_path, resume=True)

    def _queue(self, task: str, config, owner: str, label: str, run_path: Path, resume: bool = False) -> Job:
        device = resolve_device(getattr(config, "device", "auto")).type
        job = Job(f"job-{next(self._ids)}-{run_path.name}", task, config, owner, label or task, device, run_path,
                  resume=resume)
        with self._lock:
            self._jobs[job.id] = job
            self._queues.setdefault(device, deque()).append(job)
        self._dispatch()
        return job

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Every job of `owner` (None: everyone's), newest first."""
        return [j for j in reversed(self._jobs.values()) if owner is None or j.owner == owner]

    def position(self, job: Job) -> int:
        """0 while running or ended; n when n-1 jobs wait ahead of it in its device's queue."""
        with self._lock:
            queue = self._queues.get(job.device, ())
            return next((i + 1 for i, j in enumerate(queue) if j is job), 0)

    def cancel(self, job_id: str) -> None:
        """Stop a job: a queued one never starts, a running one stops at its next step."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        with self._lock:
            queue = self._queues.get(job.device)
            if job.status == "queued" and queue is not None and job in queue:
                queue.remove(job)
                job.status, job.finished, job.error = "cancelled", time.time(), "cancelled before it started"
                return
        job.cancel_token.cancel()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job ends (for scripts and tests; pages poll instead)."""
        job, deadline = self._jobs[job_id], None if timeout is None else time.time() + timeout
        while job.active and (deadline is None or time.time() < deadline):
            time.sleep(0.05)
        return job

    def _dispatch(self) -> None:
        with self._lock:
            for device, queue in self._queues.items():
                while queue and self._running.get(device, 0) < self.slots:
                    job = queue.popleft()
                    self._running[device] = self._running.get(device, 0) + 1
                    job.status, job.started = "running", time.time()
                    threading.Thread(target=self._work, args=(job,), name=job.id, daemon=True).start()

    def _work(self, job: Job) -> None:
        try:
            _, job.summary = self._runner(job.task, job.config, job.run_path, job.record, job.cancel_token,
                                          self.store, resume=job.resume)
            job.status = "done"
        except Cancelled as e:
            job.status, job.error = "cancelled", str(e) or "cancelled by the user"
        except Exception as e:  # the run record says what failed; the server and other jobs carry on
            job.status, job.error = "failed", str(e) or type(e).__name__
        finally:
            job.finished = time.time()
            with self._lock:
                self._running[job.device] -= 1
            self._dispatch()
