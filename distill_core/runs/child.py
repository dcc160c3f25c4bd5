"""Jobs in child processes: a crash in native code ends that job, never the server that runs it.

The app's one server process runs every training of a class. Run in a thread, a fault in a native library
(a oneDNN or CUDA bug, an abort on corrupted memory) or the kernel's out-of-memory killer would take the server
down with every session and queued job; in a child process it is one failed job with a sentence, and the next
job runs. The child is a fresh interpreter (`python -m distill_core.runs.child`) with the server's environment
and import path as they are when the job starts. It runs the task on its main thread and sends its events and
outcome back as pickles on its standard output (anything else written there goes to standard error); a
cancel is its standard input closing, so a child whose server has gone stops too. It writes its run record
itself, so a child that dies leaves an `interrupted` run (a distillation can resume it), which the parent
records with the reason. Starting a fresh interpreter costs about two seconds a job.
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

from .events import CancelToken, Cancelled, OnEvent
from .store import RunStore

Runner = Callable[..., tuple[Path, dict]]

CANCEL_GRACE = 30.0  # seconds a cancelled child may take to reach its next cancel point before it is killed

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


def in_child(target: Runner) -> Runner:
    """A runner with `target`'s signature, `(task, config, out, on_event, cancel, store, resume=False)`, that
    runs `target` (a module-level function) in a child process. A cancel the child does not answer within
    `CANCEL_GRACE` seconds (a hang in native code) kills it."""

    def run(task: str, config, out: Path, on_event: OnEvent, cancel: CancelToken, store: RunStore,
            resume: bool = False) -> tuple[Path, dict]:
        child = _start(target, (task, config, out), {"store": store, "resume": resume})
        kind, payload = _watch(child, on_event, cancel)
        if kind in ("died", "killed"):
            store.mark_interrupted(payload, under=Path(out))
        if kind in ("cancelled", "killed"):
            raise Cancelled(payload)
        if kind in ("failed", "died"):
            raise RuntimeError(payload)
        return payload

    return run


def _start(target: Runner, args: tuple, kwargs: dict) -> subprocess.Popen:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    child = subprocess.Popen([sys.executable, "-m", "distill_core.runs.child"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
    child.stdin.write(pickle.dumps((sys.path, pickle.dumps((target, args, kwargs)))))
    child.stdin.flush()
    return child


def _watch(child: subprocess.Popen, on_event: OnEvent, cancel: CancelToken) -> tuple[str, object]:
    """Forward the child's events until its outcome: (done, result), (failed | cancelled, sentence), or
    (died | killed, sentence) when it ended without one."""
    messages: queue.Queue = queue.Queue()
    threading.Thread(target=_read, args=(child.stdout, messages), daemon=True).start()
    cancelled_at = None
    try:
        while True:
            if cancel.cancelled and cancelled_at is None:
                child.stdin.close()
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE:
                child.kill()
                child.wait()
                return "killed", f"cancelled by the user; its process did not stop within {CANCEL_GRACE:g} s and was killed"
            try:
                kind, payload = messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if kind == "eof":  # its output ended without an outcome
                return "died", death_sentence(child.wait())
            if kind == "event":
                on_event(payload)
                continue
            threading.Thread(target=_reap, args=(child,), daemon=True).start()  # let it wind down on its own
            return kind, payload
    finally:
        if not child.stdin.closed:
            child.stdin.close()


def _reap(child: subprocess.Popen) -> None:
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _read(stream, messages: queue.Queue) -> None:
    """The child's messages, in order, then ("eof", None) when its output ends (it finished or died)."""
    try:
        while True:
            messages.put(pickle.load(stream))
    except (EOFError, pickle.UnpicklingError, OSError):
        messages.put(("eof", None))


def _cancel_on_eof(token: CancelToken) -> None:
    """Cancel when standard input closes (the parent cancelled, or is gone). Reads the raw descriptor: a thread
    parked in the buffered reader would block the interpreter's exit."""
    while os.read(sys.stdin.fileno(), 4096):
        pass
    token.cancel()


def main() -> None:
    """The child: read the job, run it, send its events and outcome."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints, Python's or native, go to stderr
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            pickle.dump(message, out)
            out.flush()

    path, request = pickle.load(sys.stdin.buffer)
    sys.path[:] = path
    target, args, kwargs = pickle.loads(request)
    token = CancelToken()
    threading.Thread(target=_cancel_on_eof, args=(token,), daemon=True).start()
    try:
        send(("done", target(*args, on_event=lambda e: send(("event", e)), cancel=token, **kwargs)))
    except Cancelled as e:
        send(("cancelled", str(e)))
    except Exception as e:  # the task already wrote its record; the parent needs only the sentence
        send(("failed", str(e) or type(e).__name__))


if __name__ == "__main__":
    main()
