"""The catalogue: every task of the engine, registered by name for the CLI, the app's job manager and its
workers. Each task is declared beside its code; the registry (`runs/registry.py`) runs them."""
from __future__ import annotations

from .attacks import ATTACK_TASK
from .distill import DISTILL_TASK, PREPARE_TASK
from .evaluate.task import EVALUATE_TASK
from .inspect.task import INSPECT_TASK
from .pipeline import PIPELINE_TASK
from .runs.registry import (RESUMABLE, TASKS, Task, TaskFailed, explain, make_config, register, resumable,
                            resume_task, run_task)
from .ssl.pretrain import PRETRAIN_TASK
from .sweep import SWEEP_TASK

__all__ = ["RESUMABLE", "TASKS", "Task", "explain", "TaskFailed", "make_config", "resumable", "resume_task", "run_task", "run_queued"]

register(PRETRAIN_TASK, ATTACK_TASK, DISTILL_TASK, PREPARE_TASK, PIPELINE_TASK, SWEEP_TASK, EVALUATE_TASK,
         INSPECT_TASK)


def run_queued(task, config, out, on_event, cancel, store, resume=False):
    """The job manager's runner (`runs/jobs.py`): importing this module in a worker registers every task."""
    if resume:
        return resume_task(out, on_event=on_event, cancel=cancel)
    return run_task(task, config, out=out, on_event=on_event, cancel=cancel, store=store)
