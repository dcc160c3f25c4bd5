"""`python -m distill_core TASK [--preset P] [--out DIR] [--FIELD VALUE ...]`, or
`python -m distill_core resume RUN_DIR` to carry an interrupted or cancelled distillation or sweep on.

Every config field of a task is a flag (`--epochs 5`, `--width 0.5`, `--device cpu`); the preset fills
what flags leave out, the reference defaults fill the rest. Progress goes to stderr; the last line of
stdout is the run's JSON summary. Errors are one sentence on stderr and exit status 2 (bad input) or
1 (the task failed).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields

from .choices import choice_help
from .config import read_settings_file
from .data.datasets import describe_datasets
from .presets import PRESETS
from .events import Cancelled, Event
from .runs.registry import names_in
from .tasks import TASKS, TaskFailed, make_config, resume_task, run_task


FLAG_TYPES = {"int": int, "float": float, "bool": bool, "str": str}  # annotations are strings here
RESERVED = {"preset"}  # config fields the CLI's own flags set (the pipeline's preset comes from --preset's preset)


def add_config_flags(parser: argparse.ArgumentParser, config_cls, choices: dict) -> None:
    """A flag per config field, its help the field's; a named choice's help lists its registry's entries."""
    for f in fields(config_cls):
        if f.name in RESERVED:
            continue
        kind = FLAG_TYPES[f.type]
        default = f.default if f.default is not MISSING else None
        named = f"; choose {choice_help(names_in(choices[f.name]))}" if f.name in choices else ""
        help_ = f"{f.metadata.get('help', '')}{named} (reference default: {default})".replace("%", "%%")  # argparse formats it
        name = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(name, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            parser.add_argument(name, dest=f.name, type=kind, default=None, metavar=kind.__name__.upper(), help=help_)


def build_parser(variants: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The CLI; `variants` picks a task's variant config (e.g. {"attack": "drupe"}) for its flags."""
    parser = argparse.ArgumentParser(prog="python -m distill_core", description="Backdoor Distillation Lab engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, task in TASKS.items():
        p = sub.add_parser(name, help=task.description, description=task.description)
        p.add_argument("--preset", default=None, choices=list(PRESETS) + ["none"],
                       help="preset over the reference defaults (default: the settings file's, else demo: "
                            "offline on embedded data)")
        p.add_argument("--config", *(["--grid"] if name == "sweep" else []), dest="settings_file", metavar="FILE",
                       help="YAML or JSON file of settings (field: value; lists for a sweep's factors); "
                            "flags win over it")
        p.add_argument("--out", default=None, help="run directory to write (default: a new one under runs/)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        add_config_flags(p, task.config_for((variants or {}).get(task.variant)), task.choices)
    sub.add_parser("datasets", help="list the datasets the lab can load")
    p = sub.add_parser("resume", help="carry an interrupted or cancelled distillation on from its last checkpoint, or a sweep from its last finished cell")
    p.add_argument("run", help="the run's folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


class ProgressPrinter:
    """Renders engine events on stderr: a bar per stage and phase, a line per epoch, log messages."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.bar, self.key = quiet, None, None

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        from tqdm import tqdm
        kind = event.get("kind")
        label = " ".join(str(event[k]) for k in ("stage", "phase") if event.get(k))
        if kind == "step":
            if self.bar is None or self.key != label:
                self.close()
                self.bar = tqdm(total=event["total"], initial=event["step"], unit="step", file=sys.stderr,
                                dynamic_ncols=True, desc=label or None)
                self.key = label
            self.bar.update(event["step"] - self.bar.n)
            if "loss" in event:
                self.bar.set_postfix(loss=f"{event['loss']:.3f}")
        elif kind == "epoch":
            extra = "".join(f" {k} {event[k]:.3f}" for k in ("loss", "knn", "ca", "asr") if event.get(k) is not None)
            tqdm.write(f"{label + ' ' if label else ''}epoch {event['epoch']}/{event['epochs']}{extra}", file=sys.stderr)
        elif kind == "log":
            tqdm.write(event.get("message", ""), file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _variants(argv: list[str]) -> dict[str, str]:
    """Read variant flags (--attack NAME) ahead of the full parse, which needs them to list the right flags."""
    pre = argparse.ArgumentParser(add_help=False)
    keys = sorted({t.variant for t in TASKS.values() if t.variant})
    for key in keys:
        pre.add_argument(f"--{key}")
    known, _ = pre.parse_known_args(argv)
    return {k: getattr(known, k) for k in keys if getattr(known, k)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_variants(argv)).parse_args(argv)
    if args.command == "datasets":
        for name, text in describe_datasets().items():
            print(f"{name:12s} {text}")
        return 0
    progress = ProgressPrinter(args.quiet)
    try:
        if args.command == "resume":
            _, summary = resume_task(args.run, on_event=progress)
        else:
            task = TASKS[args.command]
            config = task.config_for(getattr(args, task.variant, None) if task.variant else None)
            overrides = {f.name: getattr(args, f.name) for f in fields(config)
                         if f.name not in RESERVED and getattr(args, f.name, None) is not None}
            from_file = read_settings_file(args.settings_file, config) if args.settings_file else {}
            preset = args.preset or from_file.pop("preset", None) or "demo"
            cfg = make_config(args.command, None if preset == "none" else preset, {**from_file, **overrides})
            command = " ".join(["python -m distill_core", *argv])
            _, summary = run_task(args.command, cfg, out=args.out, on_event=progress, command=command)
    except TaskFailed as e:
        progress.close()
        cause = e.__cause__
        bad_input = isinstance(cause, ValueError)  # DataError and CheckpointError are ValueErrors
        print(f"error: {e} (run record: {e.run_path})", file=sys.stderr)
        return 2 if bad_input else 1
    except ValueError as e:
        progress.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        progress.close()
        print("cancelled", file=sys.stderr)
        return 130
    progress.close()
    print(json.dumps(summary, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
