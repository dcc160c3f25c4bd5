"""The engine's long operations, by name, and the one way to run them.

A task is `fn(config, run, cancel) -> summary`: `run` is both the `on_event` sink and the run directory
for weights. `run_task` owns the invariants every task shares: a run record is created before work
starts, every event reaches the run's `events.jsonl` and the caller's listener, and the run ends
`done`, `cancelled` or `failed` (with the error's message) whatever happens.
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .config import with_overrides
from .evaluate.task import EvaluateConfig, evaluate
from .presets import preset_overrides
from .runs.events import CancelToken, Cancelled, OnEvent
from .runs.store import RunStore
from .ssl.pretrain import PretrainConfig, pretrain


@dataclass(frozen=True)
class Task:
    config: type
    fn: Callable
    description: str


TASKS: dict[str, Task] = {
    "pretrain": Task(PretrainConfig, pretrain, "Pre-train a clean encoder with SimCLR and probe it downstream."),
    "evaluate": Task(EvaluateConfig, evaluate, "Score a saved encoder downstream: CA, ASR, ASR-all (and ASR-B)."),
}


def make_config(task: str, preset: str | None = None, overrides: dict | None = None):
    """Reference defaults <- preset <- overrides."""
    cfg = TASKS[task].config()
    return with_overrides(with_overrides(cfg, preset_overrides(preset, task)), overrides)


class TaskFailed(RuntimeError):
    """A task ended in failure; `run_path` holds its record and the message says why."""

    def __init__(self, message: str, run_path: Path):
        super().__init__(message)
        self.run_path = run_path


def run_task(task: str, config, out: str | Path | None = None, on_event: OnEvent | None = None,
             cancel: CancelToken | None = None, store: RunStore | None = None,
             command: str | None = None) -> tuple[Path, dict]:
    """Run `task` with `config` into run directory `out` (default: a new one in the store).

    `command` (the CLI line, say) is kept in the run record and in saved weights' provenance.
    """
    spec = TASKS[task]
    run = (store or RunStore()).create(task, asdict(config), out, listener=on_event, command=command)
    try:
        summary = spec.fn(config, run, cancel or CancelToken())
    except Cancelled as e:
        run.finish("cancelled", error=str(e))
        raise
    except Exception as e:  # a task failing must leave a readable record, never a half-written run
        run({"kind": "log", "level": "error", "message": str(e), "traceback": traceback.format_exc()})
        run.finish("failed", error=str(e))
        raise TaskFailed(str(e), run.path) from e
    summary = {"run": str(run.path), **summary}
    run.finish("done", summary)
    return run.path, summary
