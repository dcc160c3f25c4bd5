"""The engine's long operations by name, and the one way to run them.

Each task module declares its `Task` beside its code; `tasks.py`, the catalogue, registers them all. A task is
`fn(config, run, cancel) -> summary`: `run` is both the `on_event` sink and the run directory for weights.
`run_task` owns the invariants every task shares: a run record is created before work starts, every event
reaches the run's `events.jsonl` and the caller's listener, and the run ends `done`, `cancelled` or `failed`
(with the error's message) whatever happens. `resume_task` carries an interrupted or cancelled run of a
resumable task on from its last checkpoint, in the same folder.
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from ..config import check, with_overrides
from ..presets import preset_overrides
from ..events import CancelToken, Cancelled, OnEvent, cancellable
from .store import Run, RunStore, load_run


Registry = Mapping | Sequence | Callable[[], Sequence]  # names of a choice: a registry, a tuple, or a function


@dataclass(frozen=True)
class Task:
    name: str
    config: type
    fn: Callable
    description: str
    validate: Callable = lambda cfg: None     # refuses bad settings before any work, naming the field
    variant: str = ""                         # a config field that picks the config class, e.g. "attack"
    variants: Mapping = field(default_factory=dict)  # its values' registry, each entry with its `.config` class
    resumable: bool = False                   # keeps a checkpoint a run can carry on from (`Run.resumed`)
    named: Callable = lambda cfg: {}          # settings a named choice in the config brings (a named defence)
    choices: dict[str, Registry] = field(default_factory=dict)  # config field -> the registry naming its values

    def check(self, cfg) -> None:
        """Refuse bad settings before any work, naming the field: each named choice first (empty passes where
        it is the field's default: 'none' or 'the preset's'), then the task's own checks."""
        defaults = {f.name: f.default for f in fields(cfg)}
        for name, registry in self.choices.items():
            value, registry = getattr(cfg, name), names_in(registry)
            check(value in registry or value == defaults[name] == "", name,
                  f"unknown {value!r}; choose {', '.join(registry)}")
        self.validate(cfg)

    def config_for(self, variant: str | None) -> type:
        """The config class for a variant name (None: the task's default class)."""
        if not self.variant or not variant:
            return self.config
        if variant not in self.variants:
            raise ValueError(f"{self.variant}: unknown '{variant}'; choose {', '.join(self.variants)}")
        return self.variants[variant].config


def names_in(registry: Registry) -> Mapping | Sequence:
    """A registry's entries by name (one given as a function is read when asked, so it sees later entries)."""
    return registry() if callable(registry) else registry


TASKS: dict[str, Task] = {}


def register(*tasks: Task) -> None:
    TASKS.update({t.name: t for t in tasks})


def task_named(task: str | Task) -> Task:
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose {', '.join(TASKS)}")
    return TASKS[task]


def make_config(task: str | Task, preset: str | None = None, overrides: dict | None = None):
    """Reference defaults <- preset <- what a named choice brings (a named defence's settings) <- overrides (a
    variant's own preset section applies after the task's)."""
    spec, overrides = task_named(task), overrides or {}
    variant = overrides.get(spec.variant) if spec.variant else None
    cfg = spec.config_for(variant)()
    cfg = with_overrides(cfg, preset_overrides(preset, spec.name))
    if spec.variant:
        cfg = with_overrides(cfg, preset_overrides(preset, f"{spec.name}.{getattr(cfg, spec.variant)}"))
    cfg = with_overrides(cfg, overrides)
    return with_overrides(cfg, {k: v for k, v in spec.named(cfg).items() if k not in overrides})


class TaskFailed(RuntimeError):
    """A task ended in failure; `run_path` holds its record and the message says why."""

    def __init__(self, message: str, run_path: Path):
        super().__init__(message)
        self.run_path = run_path


def run_task(task: str | Task, config, out: str | Path | None = None, on_event: OnEvent | None = None,
             cancel: CancelToken | None = None, store: RunStore | None = None,
             command: str | None = None) -> tuple[Path, dict]:
    """Run `task` with `config` into run directory `out` (default: a new one in the store).

    `command` (the CLI line, say) is kept in the run record and in saved weights' provenance.
    """
    spec = task_named(task)
    run = (store or RunStore()).create(spec.name, asdict(config), out, listener=on_event, command=command)
    return _execute(spec, config, run, cancel or CancelToken())


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
            spec.check(config)
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
