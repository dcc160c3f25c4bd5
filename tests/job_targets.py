"""Job runners for the job manager's worker processes in tests: module-level, so a worker can import them.

`with_test_tasks` is the real runner with a few extra tasks registered in the worker: each starts its run like
any task, then fails the way a real fault would.
"""
import ctypes
import dataclasses
import os
import signal
import threading

import torch

from distill_core import tasks


def _exhausted(cfg, run, cancel):  # what a CUDA allocation failure raises inside a task
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _segfault(cfg, run, cancel):  # a fault in native code, as oneDNN's issue #6035 gives
    run({"kind": "log", "message": "about to fault"})
    ctypes.string_at(0)


def _killed(cfg, run, cancel):  # the system's out-of-memory killer
    run({"kind": "log", "message": "about to be killed"})
    os.kill(os.getpid(), signal.SIGKILL)


def _hang(cfg, run, cancel):  # a native hang: never reaches a cancel point
    run({"kind": "log", "message": "hanging"})
    threading.Event().wait()


def _pid(cfg, run, cancel):  # which worker ran it
    run({"kind": "log", "message": f"pid {os.getpid()}"})
    return {}


TEST_TASKS = {"oom": _exhausted, "segfault": _segfault, "killed": _killed, "hang": _hang, "pid": _pid}


def with_test_tasks(task, config, out, on_event, cancel, store, resume=False):
    for name, fn in TEST_TASKS.items():
        tasks.TASKS[name] = dataclasses.replace(tasks.TASKS["evaluate"], fn=fn)
    return tasks.run_queued(task, config, out, on_event, cancel, store, resume)
