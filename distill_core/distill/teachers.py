"""Teachers, by name: what the student learns from. All are frozen (see `FrozenTeacher`).

- `poisoned`: the suspicious encoder as it is.
- `finetuned`: the suspicious encoder fine-tuned with SimCLR on the clean subset (NAD's teacher, in SSL).
- `pruned`: fine-pruning (Liu, Dolan-Gavitt & Garg, "Fine-Pruning: Defending Against Backdooring Attacks on
  Deep Neural Networks", RAID 2018): the last stage's channels are removed one by one, least active on the clean
  data first, until the clean accuracy would drop by more than 4 points, then a short SimCLR fine-tune. Liu et al.
  measure a labelled validation set; an encoder has no classifier, so here the accuracy is a weighted kNN's
  (k 200, temperature 0.5, the kNN monitor's) on the defender's clean images, one half classified against the
  other with their labels. The channels are layer4's outputs (a ResNet's residual sums make the stage output the
  place where a channel can be removed whole). `prune_ratio` > 0 removes that fixed share instead (the lab's
  earlier form, the `fine-pruning (fixed 20%)` defence).
- `ensemble`: the mean of the poisoned and fine-tuned teachers' stage features and embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..choices import Choice
from ..data.augment import to_float
from ..evaluate.metrics import knn_predict
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


PRUNE_DROP = 0.04  # Liu et al.: prune until the accuracy drops by more than 4 points


@torch.no_grad()
def layer4_features(encoder: nn.Module, d: Defence) -> torch.Tensor:
    """The clean images' embeddings [N, C]: layer4's output pooled, so masking a channel zeroes its column."""
    encoder.eval()
    with d.rt.autocast():
        return torch.cat([encoder(d.rt.prepare(to_float(batch))).float() for batch in d.clean.split(256)])


def clean_knn_accuracy(features: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """The second half of the clean images classified by weighted kNN against the first half."""
    half = len(features) // 2
    pred = knn_predict(features[half:], features[:half], labels[:half], classes)
    return float((pred.cpu() == labels[half:].cpu()).float().mean())


def prune_order(encoder: nn.Module, d: Defence) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer4's channels, least active on the clean images first; the clean embeddings)."""
    features = layer4_features(encoder, d)
    return features.mean(0).argsort(), features


def channels_to_prune(encoder: nn.Module, d: Defence) -> tuple[torch.Tensor, dict]:
    """Boolean keep-mask over layer4's channels and the record of how it was chosen: a fixed share
    (`prune_ratio`), or as many as keep the clean kNN accuracy within `PRUNE_DROP` of the unpruned one's."""
    order, features = prune_order(encoder, d)
    labels, classes = d.labels, int(d.labels.max()) + 1
    keep = torch.ones(len(order), dtype=torch.bool, device=order.device)
    before = clean_knn_accuracy(features, labels, classes)
    if d.cfg.prune_ratio:
        n = int(d.cfg.prune_ratio * len(order))
    else:
        n = 0
        while n < len(order) - 1:
            trial = features.clone()
            trial[:, order[: n + 1]] = 0
            if clean_knn_accuracy(trial, labels, classes) < before - PRUNE_DROP:
                break
            n += 1
    keep[order[:n]] = False
    trial = features * keep
    record = {"rule": f"fixed share {d.cfg.prune_ratio:g}" if d.cfg.prune_ratio else
              f"until the clean kNN accuracy drops by more than {100 * PRUNE_DROP:g} points",
              "pruned": n, "channels": len(order), "knn_accuracy": {"before": before,
                                                                   "after": clean_knn_accuracy(trial, labels, classes)}}
    return keep, record


def poisoned(d: Defence) -> nn.Module:
    return d.copy_suspicious()


def finetuned(d: Defence) -> nn.Module:
    return d.finetuned()


def pruned(d: Defence) -> nn.Module:
    encoder = d.copy_suspicious()
    keep, d.records["pruning"] = channels_to_prune(encoder, d)
    encoder.layer4.append(ChannelMask(keep))
    r = d.records["pruning"]
    d.emit({"kind": "log", "message": f"pruned {r['pruned']} of {r['channels']} layer4 channels ({r['rule']}): clean "
                                      f"kNN accuracy {100 * r['knn_accuracy']['before']:.1f}% -> "
                                      f"{100 * r['knn_accuracy']['after']:.1f}%"})
    return d.simclr(encoder, d.suspicious_head, d.cfg.prune_epochs, "teacher")[0]


def ensemble(d: Defence) -> nn.Module:
    return Ensemble(d.copy_suspicious(), d.finetuned())


@dataclass(frozen=True)
class TeacherSpec(Choice):
    build: Callable[[Defence], nn.Module]
    simclr_epochs: str = ""   # the config field of its SimCLR phase's epochs ("teacher" phase), if it has one
    kept: str = ""            # the kept SimCLR run it is built from (a sweep trains it once per poisoned encoder)


TEACHERS: dict[str, TeacherSpec] = {t.name: t for t in (
    TeacherSpec("poisoned", "The suspicious encoder as it is.", poisoned),
    TeacherSpec("finetuned", "The suspicious encoder after SimCLR fine-tuning on the clean subset "
                "(the study's best teacher).", finetuned, "teacher_epochs", "finetuned", label="fine-tuned",
                knobs=("teacher_epochs", "teacher_lr")),
    TeacherSpec("pruned", "Fine-pruning: the last stage's least active channels removed, then a short fine-tune.",
                pruned, "prune_epochs", "pruned", cite="Liu et al., RAID 2018",
                knobs=("prune_ratio", "prune_epochs", "teacher_lr")),
    TeacherSpec("ensemble", "The mean of the poisoned and fine-tuned teachers' features.", ensemble,
                "teacher_epochs", "finetuned", knobs=("teacher_epochs", "teacher_lr")),
)}


def build_teacher(d: Defence) -> FrozenTeacher:
    """The chosen teacher, frozen. Seeded first, so it never depends on what ran before it (a kept one is
    then found again by a `prepare` run as well as by a distillation)."""
    torch.manual_seed(d.cfg.seed)
    return FrozenTeacher(d.rt.module(TEACHERS[d.cfg.teacher].build(d)))
