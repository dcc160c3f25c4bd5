"""Jobs in worker processes: a crash in native code ends that job, never the server that runs it.

The app's one server process runs every training of a class. Run in a thread, a fault in a native library
(a oneDNN or CUDA bug, an abort on corrupted memory) or the kernel's out-of-memory killer would take the server
down with every session and queued job; in a worker process it is one failed job with a sentence, and the next
job runs in a fresh worker. A worker is a child interpreter (`python -m distill_core.runs.worker`) that runs
jobs one after another on its main thread, so each job after the first finds torch imported and oneDNN's
kernels built (a fresh process per job made a class's twenty small jobs 60% more CPU). Messages are pickles:
jobs and cancels on its standard input; events and outcomes on its standard output (anything else written
there goes to standard error). A worker whose input closes (its server has gone) cancels its job and exits.
A job writes its run record itself, so one whose worker dies leaves an `interrupted` run (a distillation can
resume it), which the parent records with the reason. Workers start with the server's environment and import
path as they are when the pool first needs one.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..events import CancelToken, Cancelled, OnEvent
from .store import RunStore

Runner = Callable[..., tuple[Path, dict]]

CANCEL_GRACE = 30.0  # seconds a cancelled job may take to reach its next cancel point before its worker is killed
IDLE_SECONDS = 60.0  # an idle worker waits this long for the next job (a class's queue), then exits

WHY = {  # what a signal that ends a training process usually means, for the sentence a user reads
    "SIGKILL": "the system most likely ran out of memory and killed it",
    "SIGSEGV": "a fault in native code (a library bug, or memory the system could not give)",
    "SIGBUS": "a fault in native code (a library bug, or memory the system could not give)",
    "SIGABRT": "native code aborted (a failed check or corrupted memory)",
}


def death_sentence(returncode: int | None) -> str:
    """Why a job's process ended without a result, in one sentence."""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        cause = f"it was stopped by {name}: {WHY.get(name, 'a signal from outside')}"
    else:
        cause = f"it exited with status {returncode} before reporting a result"
    return f"the job's process died ({cause}); the server and other jobs carry on, and the run keeps what it saved"


class Worker:
    """One child interpreter that runs jobs one after another."""

    def __init__(self):
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        self.proc = subprocess.Popen([sys.executable, "-m", "distill_core.runs.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=_read, args=(self.proc.stdout, self.messages), daemon=True).start()
        self.send(("path", sys.path))

    def send(self, message: tuple) -> None:
        pickle.dump(message, self.proc.stdin)
        self.proc.stdin.flush()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, target: Runner, args: tuple, kwargs: dict, on_event: OnEvent,
            cancel: CancelToken) -> tuple[str, object]:
        """Run `target(*args, on_event=..., cancel=..., **kwargs)` here, forwarding its events, until its outcome:
        (done, result), (failed | cancelled, sentence), or (died | killed, sentence) when the worker ended without
        one (it is then dead)."""
        try:
            self.send(("run", pickle.dumps((target, args, kwargs))))
        except OSError:  # it died while idle
            return "died", death_sentence(self.proc.wait())
        cancelled_at = None
        while True:
            if cancel.cancelled and cancelled_at is None:
                cancelled_at = time.monotonic()
                try:
                    self.send(("cancel",))
                except OSError:
                    pass  # it is dying: its output's end says so
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE:
                self.proc.kill()
                self.proc.wait()
                return "killed", (f"cancelled by the user; its process did not stop within {CANCEL_GRACE:g} s "
                                  "and was killed")
            try:
                kind, payload = self.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if kind == "eof":
                return "died", death_sentence(self.proc.wait())
            if kind != "event":
                return kind, payload
            on_event(payload)


def in_worker(target: Runner) -> Runner:
    """A runner with `target`'s signature, `(task, config, out, on_event, cancel, store, resume=False)`, that
    runs `target` (a module-level function) in a worker process. Workers wait `IDLE_SECONDS` for the next job,
    then exit and free their memory. A cancel the job does not answer within `CANCEL_GRACE` seconds (a hang in
    native code) kills its worker."""
    idle: list[Worker] = []
    lock = threading.Lock()

    def retire(worker: Worker) -> None:
        with lock:
            if worker not in idle:
                return
            idle.remove(worker)
        worker.proc.stdin.close()  # it exits at its input's end
        worker.proc.wait()  # and is reaped: a server that lives for a term keeps no zombie per idle minute

    def take() -> Worker:
        with lock:
            while idle:
                worker = idle.pop()
                worker.retirement.cancel()
                if worker.alive:
                    return worker
        return Worker()

    def give_back(worker: Worker) -> None:
        worker.retirement = threading.Timer(IDLE_SECONDS, retire, (worker,))
        worker.retirement.daemon = True
        with lock:
            idle.append(worker)
        worker.retirement.start()

    def run(task: str, config, out: Path, on_event: OnEvent, cancel: CancelToken, store: RunStore,
            resume: bool = False) -> tuple[Path, dict]:
        worker = take()
        kind, payload = worker.run(target, (task, config, out), {"store": store, "resume": resume}, on_event, cancel)
        if kind in ("died", "killed"):
            store.mark_interrupted(payload, under=Path(out))
        else:
            give_back(worker)
        if kind in ("cancelled", "killed"):
            raise Cancelled(payload)
        if kind in ("failed", "died"):
            raise RuntimeError(payload)
        return payload

    return run


def _read(stream, messages: queue.Queue) -> None:
    """The worker's messages, in order, then ("eof", None) when its output ends (it finished or died)."""
    try:
        while True:
            messages.put(pickle.load(stream))
    except (EOFError, pickle.UnpicklingError, OSError):
        messages.put(("eof", None))


def main() -> None:
    """The worker: run each job it is sent, sending its events and outcome; cancel on request or when its input
    closes; exit then."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints, Python's or native, go to stderr
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            pickle.dump(message, out)
            out.flush()

    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_inbox, args=(jobs,), daemon=True).start()
    while (job := jobs.get()) is not None:
        token, request = job
        target, args, kwargs = pickle.loads(request)
        try:
            send(("done", target(*args, on_event=lambda e: send(("event", e)), cancel=token, **kwargs)))
        except Cancelled as e:
            send(("cancelled", str(e)))
        except Exception as e:  # the task already wrote its record; the parent needs only the sentence
            send(("failed", str(e) or type(e).__name__))


def _inbox(jobs: queue.Queue) -> None:
    """Read the worker's input in order: the import path, jobs (each with a fresh cancel token), cancels of the
    latest job; at its end, cancel that job and let the worker exit."""
    token = CancelToken()
    try:
        while True:
            kind, *rest = pickle.load(sys.stdin.buffer)
            if kind == "path":
                sys.path[:] = rest[0]
            elif kind == "run":
                token = CancelToken()
                jobs.put((token, rest[0]))
            elif kind == "cancel":
                token.cancel()
    except (EOFError, OSError, pickle.UnpicklingError):
        token.cancel()
        jobs.put(None)


if __name__ == "__main__":
    main()
