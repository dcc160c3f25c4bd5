"""Calibrated weights: a loss's stage weights scaled by one factor so that, at the start of distillation, its
weighted teacher term pulls on the student as hard as attention transfer at its source placement does.

Losses differ in scale by orders of magnitude (a Gram-matrix difference, a KL, a cosine), so at their sources'
weights a comparison of losses is partly a comparison of gradient sizes. Calibration measures the L2 norm of the
gradient of each weighted teacher term with respect to the student's parameters on the first batches the
distillation will see (one augmented view, as the stage losses use), and matches the means. This is the lab's
choice for a fair comparison (in the spirit of gradient-norm balancing, Chen et al., GradNorm, ICML 2018), not a
method of the study. The student's batch-norm statistics and the run's random streams are left as they were.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..models.resnet import STAGES
from ..training import epoch_batches
from .losses import LOSSES, Placement

REFERENCE = ("at", "source")
BATCHES = 8


def teacher_term_gradient(student: nn.Module, teacher: nn.Module, modules: nn.ModuleDict, weights: dict,
                          views: torch.Tensor, rt) -> float:
    """|d(sum_s w_s loss_s(student stage s, teacher stage s)) / d student|_2 on one batch of views."""
    params = [p for p in student.parameters() if p.requires_grad]
    with rt.autocast():
        _, maps = student(views, stages=True)
        _, teacher_maps = teacher(views)
        term = sum(w * modules[s](maps[STAGES.index(s)], teacher_maps[STAGES.index(s)]) for s, w in weights.items())
    grads = torch.autograd.grad(term, params, allow_unused=True)
    return float(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads if g is not None])))


def calibrate(placement: Placement, modules: nn.ModuleDict, student: nn.Module, teacher: nn.Module, clean, rt, *,
              augment, batch_size: int, seed: int, batches: int = BATCHES) -> tuple[Placement, dict]:
    """(the placement with its weights scaled, the record of what was measured). `modules` are the placement's
    stage losses as the run built them; the reference's are built here (AT has no parameters)."""
    ref = LOSSES[REFERENCE[0]].placement(REFERENCE[1])
    ref_modules = nn.ModuleDict({s: ref.build(student.stage_channels[STAGES.index(s)],
                                              teacher.stage_channels[STAGES.index(s)]) for s in ref.weights})
    gen = torch.Generator(device=rt.device).manual_seed(seed * 1000 + 7)  # its own draws
    kept = {k: v.clone() for k, v in student.state_dict().items()}  # batch-norm statistics move in train mode
    student.train()
    norms = {"loss": [], "reference": []}
    try:
        for idx in epoch_batches(len(clean), batch_size, seed, 1)[:batches]:
            views = rt.prepare(augment(clean[idx.to(rt.device)], gen))
            norms["loss"].append(teacher_term_gradient(student, teacher, modules, placement.weights, views, rt))
            norms["reference"].append(teacher_term_gradient(student, teacher, ref_modules, ref.weights, views, rt))
    finally:
        student.load_state_dict(kept)
    loss, reference = (sum(v) / len(v) for v in (norms["loss"], norms["reference"]))
    if not loss > 0:
        raise ValueError(f"calibrate: the '{placement.loss}' term has no gradient on the student at the start, "
                         "so no weight can match it")
    factor = reference / loss
    weights = {s: w * factor for s, w in placement.weights.items()}
    record = {"reference": "/".join(REFERENCE), "batches": len(norms["loss"]), "factor": factor,
              "gradient_norm": {"loss": loss, "reference": reference}, "weights_before": placement.weights}
    return replace(placement, weights=weights, note=f"{placement.note}; calibrated x{factor:.3g}"), record
