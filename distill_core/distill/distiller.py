"""One step of the defence (after Han et al., 2024, arXiv 2403.03846, and the authors' `distillation.py`):
the student's own SimCLR InfoNCE on the defender's clean images plus, for each chosen stage,
weight x loss(student stage, teacher stage), and optionally the code's extra term on the final embedding,
weight x (1 - cos(student, teacher)). Both views go through the student in one pass that also
yields its stage outputs; the frozen teacher sees the first view once per step (as in the authors' code,
which however recomputes every stage with extra passes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..device import Runtime
from ..models.resnet import STAGES
from ..ssl.simclr import info_nce
from .losses.base import Placement, linear_projection
from .teachers import FrozenTeacher


class _FirstRows(torch.autograd.Function):
    """x[:n] whose gradient has x's strides. A plain slice's backward builds an NCHW gradient, and adding that
    to the channels-last gradient from the layers above made the adds and ReLU backward 3x slower (measured)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int) -> torch.Tensor:
        ctx.n, ctx.size, ctx.stride = n, x.size(), x.stride()
        return x[:n]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out = torch.empty_strided(ctx.size, ctx.stride, dtype=grad.dtype, device=grad.device)
        out[: ctx.n] = grad
        out[ctx.n:].zero_()
        return out, None


def first_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    return _FirstRows.apply(x, n)


class Distiller:
    """One step of the defence: the student's InfoNCE over two views plus the weighted stage losses against
    the frozen teacher. Owns the optimiser (student, head and any parameters of the stage losses)."""

    def __init__(self, student: nn.Module, head: nn.Module, teacher: FrozenTeacher | None,
                 placement: Placement | None, rt: Runtime, *, lr: float, weight_decay: float, temperature: float,
                 augment, gen, embedding_weight: float = 0.0):
        self.student, self.head, self.teacher, self.rt = student, head, teacher, rt
        self.name = placement.loss if placement else ""
        self.weights, self.temperature = placement.weights if placement else {}, temperature
        own = placement.embedding if placement else 0.0  # a loss's own final-embedding term (MIMIC's clone loss)
        self.embedding_weight = embedding_weight + own if teacher else 0.0
        self.augment, self.gen, self.seed, self.epoch = augment, gen, gen.initial_seed(), 0
        self.stage_loss = rt.module(nn.ModuleDict({
            s: placement.build(student.stage_channels[STAGES.index(s)], teacher.stage_channels[STAGES.index(s)])
            for s in self.weights}))
        # a student of another width meets the teacher's embedding through a learned linear map (as stage losses do)
        self.embedding_map = rt.module(linear_projection(student.feature_dim, teacher.feature_dim)
                                       if self.embedding_weight else nn.Identity())
        trained = [p for m in (self.stage_loss, self.embedding_map) for p in m.parameters() if p.requires_grad]
        self.opt = rt.optimizer(torch.optim.Adam, [*student.parameters(), *head.parameters(), *trained], lr=lr,
                                weight_decay=weight_decay)
        self.losses = rt.compiled(self.losses)

    def step(self, x: torch.Tensor, epoch: int = 0) -> dict[str, torch.Tensor]:
        """x: uint8 images on the device -> the loss, its named terms and the stage losses' diagnostics (detached,
        still on the device). A new `epoch` first lets stage losses that renew themselves each epoch do so."""
        if epoch != self.epoch:
            self.epoch = epoch
            for module in self.stage_loss.values():
                if hasattr(module, "new_epoch"):
                    module.new_epoch(torch.Generator(device=self.rt.device).manual_seed(self.seed + epoch))
        self.student.train()
        self.head.train()
        views = self.rt.prepare(torch.cat((self.augment(x, self.gen), self.augment(x, self.gen))))
        terms = self.losses(views)
        self.opt.zero_grad(set_to_none=True)
        self.rt.backward(terms["loss"], self.opt)
        for s, module in self.stage_loss.items():
            if hasattr(module, "diagnostics"):
                terms.update({f"{self.name}.{s}.{k}": v for k, v in module.diagnostics().items()})
        return {k: v.detach() for k, v in terms.items()}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(), "head": self.head.state_dict(),
                "stage_loss": self.stage_loss.state_dict(), "embedding_map": self.embedding_map.state_dict(),
                "optimizer": self.opt.state_dict(),
                "generator": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.head.load_state_dict(state["head"])
        self.stage_loss.load_state_dict(state["stage_loss"])
        if "embedding_map" in state:  # checkpoints from before it existed have none (nor a student that needs it)
            self.embedding_map.load_state_dict(state["embedding_map"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])

    def losses(self, views: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both views [2N, ...] -> the loss and its named terms: one student pass, one teacher pass."""
        n = len(views) // 2
        with self.rt.autocast():
            feature, maps = self.student(views, stages=True)
            z = self.head(feature)
            terms = {"ssl": info_nce(z[:n], z[n:], self.temperature)}
            if self.weights or self.embedding_weight:
                teacher_feature, teacher_maps = self.teacher(views[:n])
                if self.embedding_weight:
                    terms["embedding"] = 1 - F.cosine_similarity(self.embedding_map(first_rows(feature, n).float()),
                                                                 teacher_feature.float()).mean()
                for s in self.weights:
                    i = STAGES.index(s)
                    terms[f"{self.name}.{s}"] = self.stage_loss[s](first_rows(maps[i], n), teacher_maps[i])
        loss = terms["ssl"] + sum(w * terms[f"{self.name}.{s}"] for s, w in self.weights.items())
        loss = loss + self.embedding_weight * terms.get("embedding", 0.0)
        return {"loss": loss, **terms}
