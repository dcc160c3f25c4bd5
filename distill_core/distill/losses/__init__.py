"""Distillation losses by name, one file each (the layout of mdistiller's and RepDistiller's zoos).

`finetune-only` is the baseline with no teacher term: the student trains on its SimCLR loss alone, so a
user sees what each loss adds over plain fine-tuning on the same clean data.
"""
from . import afd, at, cc, fitnet, kd, sp
from .base import LossSpec

FINETUNE_ONLY = LossSpec("finetune-only", "No teacher term: the student only trains with SimCLR on the clean "
                         "subset (the baseline every loss should beat).", "", None)

LOSSES: dict[str, LossSpec] = {s.name: s for s in (at.SPEC, afd.SPEC, cc.SPEC, fitnet.SPEC, kd.SPEC, sp.SPEC,
                                                   FINETUNE_ONLY)}
