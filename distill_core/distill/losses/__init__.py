"""Distillation losses by name, one file each (the layout of mdistiller's and RepDistiller's zoos).

`finetune-only` is the baseline with no teacher term: the student trains on its SimCLR loss alone, so a
user sees what each loss adds over plain fine-tuning on the same clean data.
"""
from dataclasses import replace

from ..config import DistillConfig, given_weights
from . import afd, at, cc, fitnet, kd, mimic, sp
from .base import PLACEMENTS, LossSpec, Placement

FINETUNE_ONLY = LossSpec("finetune-only", "No teacher term: the student only trains with SimCLR on the clean "
                         "subset (the baseline every loss should beat).", "", None)

LOSSES: dict[str, LossSpec] = {s.name: s for s in (at.SPEC, afd.SPEC, cc.SPEC, fitnet.SPEC, kd.SPEC, sp.SPEC,
                                                   mimic.SPEC, FINETUNE_ONLY)}


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
