"""Teachers, by name: what the student learns from. All are frozen (see `FrozenTeacher`).

- `poisoned`: the suspicious encoder as it is.
- `finetuned`: the suspicious encoder fine-tuned with SimCLR on the clean subset (NAD's teacher, in SSL).
- `pruned`: fine-pruning (Liu, Dolan-Gavitt & Garg, "Fine-Pruning: Defending Against Backdooring Attacks on
  Deep Neural Networks", RAID 2018): the last stage's channels least active on clean data are removed, then
  a short SimCLR fine-tune. Liu et al. prune the last convolutional layer until validation accuracy drops;
  here a fixed ratio of layer4's output channels is masked (a ResNet's residual sums make the stage output
  the place where a channel can be removed whole).
- `ensemble`: the mean of the poisoned and fine-tuned teachers' stage features and embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..data.augment import to_float
from .setup import Defence


class FrozenTeacher(nn.Module):
    """The one place that keeps a teacher frozen: always in eval mode, no parameter wants a gradient, and
    its forward runs in inference mode (no autograd, no version counters). Returns (embedding, [stage outputs])."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.stage_channels, self.feature_dim = encoder.stage_channels, encoder.feature_dim

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor):
        return self.encoder(x, stages=True)


class ChannelMask(nn.Module):
    """Zeroes pruned channels of a stage's output. The mask is in the state dict, so a kept pruned teacher
    (`prepared.py`) is found by it; teachers are never saved as encoders, so no checkpoint carries it."""

    def __init__(self, keep: torch.Tensor):
        super().__init__()
        self.register_buffer("keep", keep.float().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.keep.to(x.dtype)


class Ensemble(nn.Module):
    """Averages the embeddings and stage outputs of encoders of the same architecture."""

    def __init__(self, *encoders: nn.Module):
        super().__init__()
        self.members = nn.ModuleList(encoders)
        self.stage_channels, self.feature_dim = encoders[0].stage_channels, encoders[0].feature_dim

    def forward(self, x: torch.Tensor, stages: bool = False):
        outs = [m(x, stages=True) for m in self.members]
        feature = torch.stack([f for f, _ in outs]).mean(0)
        maps = [torch.stack(s).mean(0) for s in zip(*(s for _, s in outs))]
        return (feature, maps) if stages else feature


def least_active_channels(encoder: nn.Module, d: Defence, ratio: float) -> torch.Tensor:
    """Boolean keep-mask over layer4's channels: the `ratio` with the lowest mean activation on clean images go."""
    encoder.eval()
    total = torch.zeros(encoder.stage_channels[-1], device=d.rt.device)
    with torch.no_grad(), d.rt.autocast():
        for batch in d.clean.split(256):
            _, maps = encoder(d.rt.prepare(to_float(batch)), stages=True)
            total += maps[-1].float().mean(dim=(0, 2, 3)) * len(batch)
    keep = torch.ones_like(total, dtype=torch.bool)
    keep[total.argsort()[: int(ratio * len(total))]] = False
    return keep


def poisoned(d: Defence) -> nn.Module:
    return d.copy_suspicious()


def finetuned(d: Defence) -> nn.Module:
    return d.finetuned()


def pruned(d: Defence) -> nn.Module:
    encoder = d.copy_suspicious()
    keep = least_active_channels(encoder, d, d.cfg.prune_ratio)
    encoder.layer4.append(ChannelMask(keep))
    d.emit({"kind": "log", "message": f"pruned {int((~keep).sum())} of {len(keep)} layer4 channels"})
    return d.simclr(encoder, d.suspicious_head, d.cfg.prune_epochs, "teacher")[0]


def ensemble(d: Defence) -> nn.Module:
    return Ensemble(d.copy_suspicious(), d.finetuned())


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    title: str
    build: Callable[[Defence], nn.Module]
    simclr_epochs: str = ""   # the config field of its SimCLR phase's epochs ("teacher" phase), if it has one


TEACHERS: dict[str, TeacherSpec] = {t.name: t for t in (
    TeacherSpec("poisoned", "The suspicious encoder as it is.", poisoned),
    TeacherSpec("finetuned", "The suspicious encoder after SimCLR fine-tuning on the clean subset "
                "(the study's best teacher).", finetuned, "teacher_epochs"),
    TeacherSpec("pruned", "Fine-pruning: the last stage's least active channels removed, then a short fine-tune.",
                pruned, "prune_epochs"),
    TeacherSpec("ensemble", "The mean of the poisoned and fine-tuned teachers' features.", ensemble,
                "teacher_epochs"),
)}


def build_teacher(d: Defence) -> FrozenTeacher:
    """The chosen teacher, frozen. Seeded first, so it never depends on what ran before it (a kept one is
    then found again by a `prepare` run as well as by a distillation)."""
    torch.manual_seed(d.cfg.seed)
    return FrozenTeacher(d.rt.module(TEACHERS[d.cfg.teacher].build(d)))
