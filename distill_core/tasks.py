"""The engine's long operations, by name, and the one way to run them.

A task is `fn(config, run, cancel) -> summary`: `run` is both the `on_event` sink and the run directory
for weights. `run_task` owns the invariants every task shares: a run record is created before work
starts, every event reaches the run's `events.jsonl` and the caller's listener, and the run ends
`done`, `cancelled` or `failed` (with the error's message) whatever happens. `resume_task` carries an
interrupted or cancelled run of a resumable task on from its last checkpoint, in the same folder.
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .attacks import ATTACKS, AttackConfig, attack
from .config import with_overrides
from .distill import DistillConfig, run_distill
from .distill.prepare import prepare
from .evaluate.task import EvaluateConfig, evaluate
from .inspect.task import InspectConfig, inspect_run
from .pipeline import PipelineConfig, pipeline
from .presets import preset_overrides
from .runs.events import CancelToken, Cancelled, OnEvent, cancellable
from .runs.store import Run, RunStore, load_run
from .ssl.pretrain import PretrainConfig, pretrain
from .sweep import SweepConfig, sweep


@dataclass(frozen=True)
class Task:
    config: type
    fn: Callable
    description: str
    variant: str = ""                         # a config field that picks the config class, e.g. "attack"
    variants: dict[str, type] = field(default_factory=dict)
    resumable: bool = False                   # keeps a checkpoint a run can carry on from (`Run.resumed`)

    def config_for(self, variant: str | None) -> type:
        """The config class for a variant name (None: the task's default class)."""
        if not self.variant or not variant:
            return self.config
        if variant not in self.variants:
            raise ValueError(f"{self.variant}: unknown '{variant}'; choose {', '.join(self.variants)}")
        return self.variants[variant]


TASKS: dict[str, Task] = {
    "pretrain": Task(PretrainConfig, pretrain, "Pre-train a clean encoder with SimCLR and probe it downstream."),
    "attack": Task(AttackConfig, attack, "Poison a clean encoder with BadEncoder or DRUPE and measure BA/ASR.",
                   variant="attack", variants={name: a.config for name, a in ATTACKS.items()}),
    "distill": Task(DistillConfig, run_distill, "Purify a suspicious encoder by distilling it into a student on clean data.",
                    resumable=True),
    "prepare": Task(DistillConfig, prepare, "Build a distillation's teacher and student into its reuse folder "
                    "(fine-tuning, pruning, warm-up) without distilling."),
    "pipeline": Task(PipelineConfig, pipeline, "The whole story: (pre-train,) attack, distill; clean, poisoned "
                     "and distilled figures side by side."),
    "sweep": Task(SweepConfig, sweep, "The study's grid: attacks x downstreams x teachers x students x losses x "
                  "seeds, shared stages computed once, resumable, gathered into tables (locally or on Ray).",
                  resumable=True),
    "evaluate": Task(EvaluateConfig, evaluate, "Score a saved encoder downstream: CA, ASR, ASR-all (and ASR-B)."),
    "inspect": Task(InspectConfig, inspect_run, "Where do a story's encoders look on triggered images? Attribution "
                    "maps and the trigger-attention share."),
}


def make_config(task: str, preset: str | None = None, overrides: dict | None = None):
    """Reference defaults <- preset <- overrides (a variant's own preset section applies after the task's)."""
    spec, overrides = TASKS[task], overrides or {}
    variant = overrides.get(spec.variant) if spec.variant else None
    cfg = spec.config_for(variant)()
    cfg = with_overrides(cfg, preset_overrides(preset, task))
    if spec.variant:
        cfg = with_overrides(cfg, preset_overrides(preset, f"{task}.{getattr(cfg, spec.variant)}"))
    return with_overrides(cfg, overrides)


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
    run = (store or RunStore()).create(task, asdict(config), out, listener=on_event, command=command)
    return _execute(TASKS[task], config, run, cancel or CancelToken())


def explain(error: Exception) -> str:
    """The sentence a user reads when a task fails."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return ("the device ran out of memory: lower the batch size, the encoder's width or the amount of data "
                f"({type(error).__name__})")
    return str(error) or type(error).__name__


RESUMABLE = ("interrupted", "cancelled")


def resume_task(path: str | Path, on_event: OnEvent | None = None,
                cancel: CancelToken | None = None) -> tuple[Path, dict]:
    """Carry an interrupted or cancelled run on from its last checkpoint, to the result it would have reached."""
    kind, config = resumable(path)
    return _execute(TASKS[kind], config, Run.reopen(path, on_event), cancel or CancelToken())


def resumable(path: str | Path) -> tuple[str, object]:
    """(task, config) of a run that can be resumed; ValueError saying why one cannot."""
    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder: it has no config.json.")
    rec = load_run(path)
    spec = TASKS.get(rec["kind"])
    if spec is None or not spec.resumable:
        kinds = " and ".join(name for name, t in TASKS.items() if t.resumable)
        raise ValueError(f"{rec['id']} is a {rec['kind']} run; only {kinds} runs can be resumed.")
    if rec["status"] not in RESUMABLE:
        raise ValueError(f"{rec['id']} is {rec['status']}; only {' or '.join(RESUMABLE)} runs can be resumed.")
    variant = rec["config"].get(spec.variant) if spec.variant else None
    return rec["kind"], with_overrides(spec.config_for(variant)(), rec["config"])


def _execute(spec: Task, config, run: Run, cancel: CancelToken) -> tuple[Path, dict]:
    try:
        with cancellable(cancel):
            summary = spec.fn(config, run, cancel)
    except Cancelled as e:
        run.finish("cancelled", error=str(e))
        raise
    except Exception as e:  # a task failing must leave a readable record, never a half-written run
        message = explain(e)
        run({"kind": "log", "level": "error", "message": message, "traceback": traceback.format_exc()})
        run.finish("failed", error=message)
        raise TaskFailed(message, run.path) from e
    summary = {"run": str(run.path), **summary}
    run.finish("done", summary)
    return run.path, summary
