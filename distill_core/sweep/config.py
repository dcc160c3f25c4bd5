"""A sweep's settings: the factors it crosses (attacks x downstreams x teachers x students x losses x seeds)
and, as in a pipeline, where the story starts and how big each stage is.

Factors are comma-separated (`--teachers finetuned,pruned`) or YAML lists in a grid file (`--grid`). Every
downstream is attacked with `target`, by default its usual one (GTSRB priority road, SVHN digit 1, STL10 truck); the
pre-training and the attacks use `seed`, the defence each of `seeds`. `settings` passes any stage's own
fields, e.g. `{"distill": {"lr": 0.001}, "attack.drupe": {"epochs": 100}}`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields

from ..attacks import ATTACKS
from ..config import check, check_dataset, opt
from ..distill import LOSSES, PLACEMENTS, STUDENTS, TEACHERS
from ..pipeline import STAGES, StagesConfig

TEACHER_LOSSES = ",".join(name for name, spec in LOSSES.items() if spec.build and spec.study)  # the study's six


@dataclass
class SweepConfig(StagesConfig):
    attacks: str = opt("badencoder,drupe", "attacks, comma-separated")
    downstreams: str = opt("", "downstream datasets, comma-separated, each attacked with its usual target "
                               "(empty = downstream)")
    teachers: str = opt(",".join(TEACHERS), "teachers, comma-separated")
    students: str = opt(",".join(STUDENTS), "students, comma-separated")
    losses: str = opt(TEACHER_LOSSES, "distillation losses, comma-separated")
    seeds: str = opt("0", "the defence's seeds, comma-separated (the pre-training and attacks use seed)")
    placements: str = opt("source", "where the losses apply, comma-separated: source (each where its paper puts "
                                    "it), authors (the study's defence code) or all-stages")
    calibrated: str = opt("", "placements also run with each stage weight scaled to attention transfer's pull at the "
                              "same stage (distill --calibrate), comma-separated, e.g. source; tables name such a "
                              "level source+calibrated")
    settings: str = opt("", "JSON of stage settings: {\"pretrain\"|\"attack\"|\"attack.drupe\"|\"distill\": "
                            "{field: value}}")
    ray: str = opt("", "run the cells on Ray: auto (this machine's cluster), local (start one here) or an "
                       "address; empty = one after another in this process")


CALIBRATED = "+calibrated"  # a calibrated placement's level: source+calibrated
FACTORS = {"attack": ("attacks", ATTACKS), "downstream": ("downstreams", None), "teacher": ("teachers", TEACHERS),
           "student": ("students", STUDENTS), "loss": ("losses", LOSSES), "placement": ("placements", PLACEMENTS),
           "seed": ("seeds", None)}


def names(text) -> list[str]:
    """The values of a comma-separated setting, blanks dropped."""
    return [v.strip() for v in str(text or "").split(",") if v.strip()]


def levels(cfg: SweepConfig) -> dict[str, list]:
    """Each factor's values, in the order given: {"attack": [...], ..., "seed": [0, 1]}; the placements, then the
    calibrated ones."""
    out = {}
    for factor, (name, _) in FACTORS.items():
        values = names(getattr(cfg, name) or (cfg.downstream if factor == "downstream" else ""))
        out[factor] = [int(v) for v in values] if factor == "seed" else values
    out["placement"] += [p + CALIBRATED for p in names(cfg.calibrated)]
    return out


def split_level(level: str) -> tuple[str, bool]:
    """A placement level as (placement, calibrate)."""
    return level.removesuffix(CALIBRATED), level.endswith(CALIBRATED)


def stage_settings(cfg: SweepConfig) -> dict[str, dict]:
    return json.loads(cfg.settings) if cfg.settings.strip() else {}


def validate(cfg: SweepConfig) -> None:
    import importlib.util
    check(not cfg.ray or importlib.util.find_spec("ray") is not None, "ray",
          "running on Ray needs it installed: pip install 'ray>=2.9'")
    packed = next((p for p in names(cfg.placements) if p.endswith(CALIBRATED)), "")
    base = packed.removesuffix(CALIBRATED)
    check(not packed, "placements", f"{packed!r} is two settings now: placements: {base} and calibrated: {base}")
    for factor, (name, registry) in FACTORS.items():
        raw = names(getattr(cfg, name))
        check(bool(raw) or factor == "downstream", name, "name at least one")
        check(len(set(raw)) == len(raw), name, "a value is named twice")
        if registry is not None:
            unknown = [v for v in raw if v not in registry]
            check(not unknown, name, f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(registry)}")
        if factor == "seed":
            check(all(v.lstrip("-").isascii() and v.lstrip("-").isdigit() for v in raw), name,
                  f"{getattr(cfg, name)!r} is not a comma-separated list of whole numbers")
    unknown = [p for p in names(cfg.calibrated) if p not in PLACEMENTS]
    check(not unknown, "calibrated", f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(PLACEMENTS)}")
    for ds in levels(cfg)["downstream"]:
        check_dataset(ds, "downstreams")
    try:
        settings = stage_settings(cfg)
    except json.JSONDecodeError as e:
        raise ValueError(f"settings: not valid JSON ({e.msg})") from None
    check(isinstance(settings, dict), "settings", "must be a JSON object of stages")
    for stage, values in settings.items():
        task = stage.split(".")[0]
        check(task in ("pretrain", "attack", "distill"), "settings", f"unknown stage {stage!r}; "
              "choose pretrain, attack, attack.NAME or distill")
        check(isinstance(values, dict), "settings", f"{stage}: must be an object of field: value")
        variant = stage.split(".")[1] if "." in stage else None
        known = {f.name for f in fields(STAGES[task].config_for(variant))}
        unknown = sorted(set(values) - known)
        check(not unknown, "settings", f"{stage} has no field {', '.join(map(repr, unknown))}")
