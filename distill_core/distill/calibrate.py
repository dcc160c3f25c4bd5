"""Calibrated weights: each stage weight of a loss scaled so that its weighted teacher term pulls on the student as
hard as attention transfer does at the same stage and the same placement.

Losses differ in scale by orders of magnitude (a Gram-matrix difference, a KL, a cosine), so at their sources'
weights a comparison of losses is partly a comparison of gradient sizes. Calibration measures, per stage, the
gradient of the weighted stage term with respect to the student's parameters, averaged over the first batches the
distillation will see (one augmented view, as the stage losses use), and sets
    factor_s = |mean gradient of AT's term at s| / |mean gradient of the loss's term at s|
with AT at the run's own placement (its weights there; AT's `source` has every stage). The norm of the mean
gradient, not the mean of per-batch norms: a relational loss whose gradient points another way on every batch
pulls less than its per-batch norms say. The factors are measured at the start and again after the first epoch
(the student has moved, and the loss's gradient with it), and the run carries the second set from its second
epoch; both are recorded. A run's final-embedding term is the same whatever the loss, so it is
not scaled: its pull is measured and recorded beside the stage terms'. A factor outside `SANE` is refused in one
sentence: above it the loss has next to no gradient there (the student already matches its teacher).

This is the lab's choice for a fair comparison (in the spirit of gradient-norm balancing, Chen et al., GradNorm,
ICML 2018), not a method of the study. The student's batch-norm statistics and the run's random streams are left
as they were.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ..models.resnet import STAGES
from ..training import epoch_batches
from .losses import LOSSES, Placement

REFERENCE = "at"
BATCHES = 4
SANE = (1e-6, 1e4)  # the authors' CC on unpooled maps needs about x6e-4, KD at its source x20


def mean_gradients(student: nn.Module, teacher: nn.Module, terms: dict, views: list[torch.Tensor], rt) -> dict:
    """{name: the gradient of term(student maps, teacher maps) with respect to the student's parameters, flattened,
    averaged over the batches of `views`}. `terms` maps a name to a function of (maps, teacher maps, feature,
    teacher feature) -> a scalar."""
    params = [p for p in student.parameters() if p.requires_grad]
    total = {name: torch.zeros(sum(p.numel() for p in params), device=rt.device) for name in terms}
    for batch in views:
        with rt.autocast():
            feature, maps = student(batch, stages=True)
            teacher_feature, teacher_maps = teacher(batch)
            values = {name: fn(maps, teacher_maps, feature, teacher_feature) for name, fn in terms.items()}
        for name, value in values.items():
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            total[name] += torch.cat([(g if g is not None else torch.zeros_like(p)).float().flatten()
                                      for g, p in zip(grads, params)])
    return {name: g / len(views) for name, g in total.items()}


def stage_term(module: nn.Module, stage: str, weight: float):
    i = STAGES.index(stage)
    return lambda maps, teacher_maps, *_: weight * module(maps[i], teacher_maps[i])


def measure(placement: Placement, modules: nn.ModuleDict, student: nn.Module, teacher: nn.Module, clean, rt, *,
            augment, batch_size: int, seed: int, embedding_weight: float, where: str, when: str,
            embedding_map: nn.Module = nn.Identity()) -> dict:
    """The per-stage gradient norms of the loss and of AT at the run's placement (`where`), and the factors."""
    reference = LOSSES[REFERENCE].placement(where)
    ref_modules = {s: reference.build(student.stage_channels[STAGES.index(s)], teacher.stage_channels[STAGES.index(s)])
                   for s in placement.weights}
    terms = {f"loss.{s}": stage_term(modules[s], s, w) for s, w in placement.weights.items()}
    terms.update({f"at.{s}": stage_term(ref_modules[s], s, reference.weights[s]) for s in placement.weights})
    if embedding_weight:
        terms["embedding"] = lambda m, tm, f, tf: embedding_weight * (
            1 - F.cosine_similarity(embedding_map(f.float()), tf.float()).mean())
    gen = torch.Generator(device=rt.device).manual_seed(seed * 1000 + 7)  # its own draws
    kept = {k: v.clone() for k, v in student.state_dict().items()}  # batch-norm statistics move in train mode
    student.train()
    try:
        views = [rt.prepare(augment(clean[idx.to(rt.device)], gen))
                 for idx in epoch_batches(len(clean), batch_size, seed, 1)[:BATCHES]]
        norms = {k: float(g.norm()) for k, g in mean_gradients(student, teacher, terms, views, rt).items()}
    finally:
        student.load_state_dict(kept)
    factors = {}
    for s in placement.weights:
        loss, ref = norms[f"loss.{s}"], norms[f"at.{s}"]
        factor = ref / loss if loss > 0 else float("inf")
        if not SANE[0] <= factor <= SANE[1]:
            why = ("the student already matches its teacher there" if factor > SANE[1] else
                   "attention transfer does not pull there at all" if ref == 0 else
                   "its pull dwarfs attention transfer's")
            raise ValueError(f"calibrate: {when}, the '{placement.loss}' term on {s} pulls on the student with a "
                             f"gradient of {loss:.2g} against attention transfer's {ref:.2g}, so its weight would be "
                             f"multiplied by {factor:.2g}, outside {SANE[0]:g}-{SANE[1]:g} ({why}); run it "
                             "uncalibrated, or with another teacher or student")
        factors[s] = factor
    return {"when": when, "batches": len(views), "reference": f"{REFERENCE}/{where}", "gradient_norm": norms,
            "factors": factors}


def calibrate(base: Placement, modules: nn.ModuleDict, student: nn.Module, teacher: nn.Module, clean, rt, *,
              augment, batch_size: int, seed: int, where: str = "source", embedding_weight: float = 0.0,
              embedding_map: nn.Module = nn.Identity(), when: str = "at the start") -> tuple[Placement, dict]:
    """(the placement with each stage's weight scaled, the record of what was measured). `base` is the uncalibrated
    placement, `where` its name (AT's weights there are the reference), `modules` its stage losses as the run built
    them; AT's are built here (it has no parameters)."""
    record = measure(base, modules, student, teacher, clean, rt, augment=augment, batch_size=batch_size, seed=seed,
                     embedding_weight=embedding_weight, embedding_map=embedding_map, where=where, when=when)
    weights = {s: w * record["factors"][s] for s, w in base.weights.items()}
    factors = ", ".join(f"{s} x{f:.3g}" for s, f in record["factors"].items())
    return replace(base, weights=weights, note=f"{base.note}; calibrated {when}: {factors}"), \
        {**record, "weights_before": base.weights, "weights": weights}
