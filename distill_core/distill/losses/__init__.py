"""Distillation losses by name, one file each (the layout of mdistiller's and RepDistiller's zoos), found by
looking: every module here that declares a `SPEC` is registered, so a new loss is its file and its docs rows.
The study's six come first, by name, then the others (MIMIC), then `finetune-only`.

`finetune-only` is the baseline with no teacher term: the student trains on its SimCLR loss alone, so a
user sees what each loss adds over plain fine-tuning on the same clean data.
"""
import importlib
import pkgutil
from dataclasses import replace

from ..config import DistillConfig, given_weights
from .base import PLACEMENTS, LossSpec, Placement

FINETUNE_ONLY = LossSpec("finetune-only", "No teacher term: the student only trains with SimCLR on the clean "
                         "subset (the baseline every loss should beat).", None, label="fine-tuning only")


def declared() -> list[LossSpec]:
    """The `SPEC` of every module in this folder, the study's first."""
    modules = (importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))
    return sorted((m.SPEC for m in modules if hasattr(m, "SPEC")), key=lambda spec: (not spec.study, spec.name))


LOSSES: dict[str, LossSpec] = {s.name: s for s in (*declared(), FINETUNE_ONLY)}


def loss_placement(cfg: DistillConfig) -> Placement | None:
    """The chosen loss at the chosen placement, with `weights` when given (None: no teacher term)."""
    spec = LOSSES[cfg.loss]
    if spec.build is None:
        return None
    placement = spec.placement(cfg.placement)
    weights = given_weights(cfg)
    return placement if weights is None else replace(placement, weights=weights, weigh=None,
                                                     note=f"{placement.note}; weights as given")


__all__ = ["LOSSES", "PLACEMENTS", "LossSpec", "Placement", "loss_placement"]
