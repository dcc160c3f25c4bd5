"""Attention-based feature distillation: Wang et al., "Pay Attention to Features, Transfer Learn Faster
CNNs", ICLR 2020 (the AFD part of AFDS), as Knowledge-Distillation-Zoo implements it.

Each channel's spatial map is L2-normalised in student and teacher; the loss is the attention-weighted sum
over channels of their squared distance,  sum_c rho_c * mean_hw (s_c/|s_c| - t_c/|t_c|)^2,  averaged over
the batch. The weights rho come from the teacher's features through a small attention module (global
average pool -> 1x1 conv to C -> ReLU -> 1x1 conv to C -> sigmoid, normalised to sum 1), one per image,
trained with the student by the same optimiser. Its source applies it to every stage's output at 500, averaged
over stages (here 125 on each of four).

The attention is the loss's own judgement of which channels matter, and a trained one can drift to the channels
that already match (its gradient pushes weight there), which would fade the teacher's signal. So every
forward keeps its entropy, as a share of log C (1: uniform over channels; 0: all on one), and the run
records it per stage and epoch.

The authors' defence code uses the zoo's module with `att_f = 2` (hidden width 2C, weights
`kaiming_normal_(mode='fan_out', nonlinearity='relu')`, zero biases), builds it inside `train()`, so anew every
epoch, and never gives it to the optimiser (`AuthorsAFD`, the `authors` placement, every stage at 1000). Under that
initialisation an image's largest channel weight is 7-16 times its smallest (median over images, per stage of the
shipped demo encoder; 1.4-1.5 under PyTorch's default initialisation at width C), so their untrained attention is
a random weighting redrawn each epoch, far from an average.
The `source` form keeps PyTorch's default initialisation of its (trained) hidden-width-C module.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...models.resnet import STAGES
from .base import LossSpec, Placement, match_spatial, projection


def channel_normalise(f: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each channel's map to unit L2 norm: [B, C, H, W] -> same."""
    return f / (f.flatten(2).norm(dim=2)[..., None, None] + eps)


def afd_loss(s: torch.Tensor, t: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """s, t [B, C, H, W] with equal channels; rho [B, C], rows summing to 1."""
    d = (channel_normalise(s) - channel_normalise(t)).pow(2).mean(dim=(2, 3))
    return (rho * d).sum(1).mean()


def channel_attention(logits: torch.Tensor) -> torch.Tensor:
    """[B, C] -> sigmoid weights normalised to sum 1 per image."""
    rho = torch.sigmoid(logits.float())
    return rho / rho.sum(1, keepdim=True)


def relative_entropy(rho: torch.Tensor) -> torch.Tensor:
    """Mean over images of -sum rho log rho / log C: 1 for uniform weights, 0 for one channel."""
    h = -(rho * rho.clamp_min(1e-12).log()).sum(1)
    return h.mean() / math.log(rho.shape[1]) if rho.shape[1] > 1 else h.mean() * 0


class AttentionFeatureDistillation(nn.Module):
    def __init__(self, s_channels: int, t_channels: int, hidden: int = 1):
        super().__init__()
        self.project = projection(s_channels, t_channels)
        self.attention = nn.Sequential(nn.Conv2d(t_channels, hidden * t_channels, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(hidden * t_channels, t_channels, 1))
        self.entropy = torch.zeros(())

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, t = match_spatial(self.project(s.float()), t)
        rho = channel_attention(self.attention(t.mean(dim=(2, 3), keepdim=True)).flatten(1))
        self.entropy = relative_entropy(rho.detach())
        return afd_loss(s, t, rho)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        return {"entropy": self.entropy}


class AuthorsAFD(AttentionFeatureDistillation):
    """The authors' AFD: the same loss with an attention module of hidden width 2C that never trains and is drawn
    anew at every epoch's start, as their code draws it (deterministically here, from the run's seed and the
    epoch)."""

    def __init__(self, s_channels: int, t_channels: int):
        super().__init__(s_channels, t_channels, hidden=2)
        self.attention.requires_grad_(False)
        self.new_epoch(None)

    def new_epoch(self, gen: torch.Generator | None) -> None:
        for conv in (self.attention[0], self.attention[2]):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu", generator=gen)
            nn.init.zeros_(conv.bias)


SPEC = LossSpec("afd", "Attention-based feature distillation: match per-channel maps, weighted by a learned "
                "attention over the teacher's channels.", AttentionFeatureDistillation, cite="Wang et al., ICLR 2020", label="AFD",
                weight=1000.0, source_weights={s: 125.0 for s in STAGES},
                source_note="every stage, 500 averaged over the four (Knowledge-Distillation-Zoo)",
                authors=Placement("afd", {s: 1000.0 for s in STAGES}, AuthorsAFD,
                                  "the authors' code: attention never trained, drawn anew each epoch; every stage "
                                  "at 1000", variant="untrained attention"))
