"""Attention-based feature distillation: Wang et al., "Pay Attention to Features, Transfer Learn Faster
CNNs", ICLR 2020 (the AFD part of AFDS).

Each channel's spatial map is L2-normalised in student and teacher; the loss is the attention-weighted sum
over channels of their squared distance,  sum_c rho_c * mean_hw (s_c/|s_c| - t_c/|t_c|)^2,  averaged over
the batch. The weights rho come from the teacher's features through a small attention module (global
average pool -> 1x1 conv to 2C -> ReLU -> 1x1 conv to C -> softmax over channels), one per image, trained jointly with
the student by the same optimiser, so the student spends its capacity on the channels the module selects.
The distance is averaged over positions as in the authors' defence code (the paper writes a sum; the
factor H*W is absorbed by the weight). The authors' code never trains its attention modules (they are
not given to the optimiser) and normalises sigmoid outputs instead of a softmax; here they train.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec, match_spatial, projection


def channel_normalise(f: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each channel's map to unit L2 norm: [B, C, H, W] -> same."""
    return f / (f.flatten(2).norm(dim=2)[..., None, None] + eps)


def afd_loss(s: torch.Tensor, t: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """s, t [B, C, H, W] with equal channels; rho [B, C], rows summing to 1."""
    d = (channel_normalise(s) - channel_normalise(t)).pow(2).mean(dim=(2, 3))
    return (rho * d).sum(1).mean()


class AttentionFeatureDistillation(nn.Module):
    def __init__(self, s_channels: int, t_channels: int, hidden_factor: float = 2.0):
        super().__init__()
        mid = max(1, int(t_channels * hidden_factor))
        self.project = projection(s_channels, t_channels)
        self.attention = nn.Sequential(nn.Conv2d(t_channels, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, t_channels, 1))

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, t = match_spatial(self.project(s.float()), t)
        rho = F.softmax(self.attention(F.adaptive_avg_pool2d(t, 1)).flatten(1).float(), dim=1)
        return afd_loss(s, t, rho)


SPEC = LossSpec("afd", "Attention-based feature distillation: match per-channel maps, weighted by a learned "
                "attention over the teacher's channels.", "Wang et al., ICLR 2020", AttentionFeatureDistillation,
                weight=1000.0)
