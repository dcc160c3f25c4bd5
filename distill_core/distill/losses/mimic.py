"""MIMIC: Han et al., "Mutual Information Guided Backdoor Mitigation for Pre-trained Encoders", IEEE TIFS 2025
(the distillation study's authors' successor; code wssun/MIMIC, `MIMIC.py`, `models/scheduler.py`, `estimator/`).

The loss is attention transfer (the same map and squared difference as `at.py`) on all four stages plus a clone
loss on the final embedding, -cos(student, teacher) at weight 1 (`cloneloss * opt5`); the lab's final-embedding
term, weight x (1 - cos), has the same gradient. The stage weights are set once, before distillation, from the
mutual information between each stage's output and the encoder's embedding:
    w_s = 1000 + 10000 x I_s / sum_s' I_s'
(`weight_scheduler(base_opt=[1000] * 4, momentum_opt=10000)`), where I_s is a Donsker-Varadhan lower bound (MINE)
estimated on the student as it starts (randomly initialised in MIMIC) over the defender's clean images, without
augmentation, in the loader's fixed order. A statistics network T (the flattened stage map concatenated with the
L2-normalised embedding -> 512 -> 512 -> 1, ReLU) is trained per stage with Adam (lr 1e-3, weight decay 1e-5) to
maximise  mean T(x, y) - log mean exp T(x, y shuffled);  each epoch's estimate is that bound averaged over the
batches (negative or NaN counts as 0), and I_s is the mean of the last 10 epochs' estimates.

MIMIC's own parts are a poisoned teacher (the suspicious encoder as it is) and a randomly initialised student
(the `MIMIC` named defence in `baselines.py`). Where the lab differs: the source trains each T for 200 epochs
(`mi_epochs`, which the CPU presets shrink, each recorded), evaluates the bound every epoch where only the last
10 are used (here only those), and computes log mean exp T directly (here through logsumexp: the same value,
no overflow), and computes the statistics network's first layer on the stage map once for both pairs (the same
function).
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ...data.augment import to_float
from ...models.resnet import STAGES
from .at import AttentionTransfer
from .base import LossSpec, Placement

BASE, MOMENTUM = 1000.0, 10000.0  # weight_scheduler(base_opt=[1000, 1000, 1000, 1000], momentum_opt=10000)
LAST = 10                          # the estimates averaged: the last 10 epochs'


class StatisticsNetwork(nn.Module):
    """MINE's T(x, y): a stage map (flattened) and an embedding -> one score. Its first layer is one linear map of
    the concatenation, applied as the sum of its two column blocks, so the map's share (the costly one) is computed
    once for the joint and the shuffled pairs (the same function as the source's, half the work)."""

    def __init__(self, map_dim: int, embedding_dim: int, hidden: int = 512):
        super().__init__()
        self.map_dim = map_dim
        self.first = nn.Linear(map_dim + embedding_dim, hidden)
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, *ys: torch.Tensor) -> list[torch.Tensor]:
        """One score per row for each y paired with x."""
        hx = F.linear(x, self.first.weight[:, :self.map_dim], self.first.bias)
        return [self.rest(hx + F.linear(y, self.first.weight[:, self.map_dim:])) for y in ys]


def dv_bound(t: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Donsker-Varadhan: E_joint[T] - log E_marginal[exp T], the marginal by shuffling y within the batch."""
    joint, marginal = t(x, y, y[torch.randperm(len(y), generator=gen, device=y.device)])
    return joint.mean() - (torch.logsumexp(marginal.flatten(), 0) - math.log(len(y)))


@torch.no_grad()
def stage_outputs(encoder: nn.Module, images: torch.Tensor, rt, batch_size: int) -> tuple[list, torch.Tensor]:
    """Every stage's output, flattened, and the L2-normalised embedding of each clean image (eval mode, no
    augmentation, as MIMIC's memory loader gives them)."""
    was_training = encoder.training
    encoder.eval()
    maps, embeddings = [[] for _ in STAGES], []
    for batch in images.split(batch_size):
        feature, outs = encoder(rt.prepare(to_float(batch)), stages=True)
        embeddings.append(F.normalize(feature.float(), dim=1))
        for kept, out in zip(maps, outs):
            kept.append(out.float().flatten(1))
    encoder.train(was_training)
    return [torch.cat(m) for m in maps], torch.cat(embeddings)


def estimate_mi(x: torch.Tensor, y: torch.Tensor, rt, *, epochs: int, batch_size: int, seed: int,
                cancel=None) -> float:
    """One stage's mutual information with the embedding, as MIMIC's `estimate_mi` measures it."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        t = StatisticsNetwork(x.shape[1], y.shape[1]).to(x.device)
    opt = rt.optimizer(torch.optim.Adam, t.parameters(), lr=1e-3, weight_decay=1e-5)
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    estimates = []
    for epoch in range(epochs):
        if cancel is not None:
            cancel.check()
        t.train()
        for xb, yb in batches:
            loss = -dv_bound(t, xb, yb, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch >= epochs - LAST:
            with torch.no_grad():
                t.eval()
                values = [float(dv_bound(t, xb, yb, gen)) for xb, yb in batches]
            estimates.append(sum(0.0 if math.isnan(v) or v < 0 else v for v in values) / len(values))
    return sum(estimates) / len(estimates)


def mi_weights(placement: Placement, student: nn.Module, clean: torch.Tensor, rt, *, epochs: int, batch_size: int,
               seed: int, cancel=None) -> tuple[Placement, dict]:
    """(the placement with MIMIC's weights, the record: each stage's estimate and weight). Stages whose estimates
    are all zero share the momentum equally (the source would divide by zero)."""
    maps, embedding = stage_outputs(student, clean, rt, batch_size)
    mi = {s: estimate_mi(maps[STAGES.index(s)], embedding, rt, epochs=epochs, batch_size=batch_size,
                         seed=seed * 1000 + 31 + STAGES.index(s), cancel=cancel) for s in placement.weights}
    total = sum(mi.values())
    share = {s: v / total if total > 0 else 1 / len(mi) for s, v in mi.items()}
    weights = {s: placement.weights[s] + MOMENTUM * share[s] for s in placement.weights}
    record = {"mutual_information": mi, "epochs": epochs, "base": placement.weights, "momentum": MOMENTUM,
              "weights": weights}
    note = ", ".join(f"{s} {w:.0f}" for s, w in weights.items())
    return replace(placement, weights=weights, note=f"{placement.note}; weighted by mutual information: {note}"), \
        record


NOTE = ("MIMIC's code: attention transfer on every stage at 1000 + 10000 x its share of the mutual information "
        "with the embedding, and the clone loss (cosine of the final embeddings) at 1")
SPEC = LossSpec("mimic", "MIMIC: attention transfer on every stage, weighted by each stage's mutual information with "
                "the embedding, plus a clone loss on the final embedding.", AttentionTransfer,
                cite="Han et al., IEEE TIFS 2025", label="MIMIC", weight=BASE + MOMENTUM / len(STAGES), source_weights={s: BASE for s in STAGES},
                source_note=NOTE, embedding=1.0, weigh=mi_weights, study=False, term="AT",
                authors=Placement("mimic", {s: BASE for s in STAGES}, AttentionTransfer, NOTE + " (the study's "
                                  "authors' own code, as `source`)", embedding=1.0, weigh=mi_weights))
