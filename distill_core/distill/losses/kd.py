"""Knowledge distillation: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015.

An encoder has no class logits, so the softened distributions are over embedding dimensions: each stage's
output is globally average-pooled (for layer4 this is the encoder's embedding), divided by the temperature
T and soft-maxed; the loss is KL(teacher || student) averaged over the batch and scaled by T^2, as in the
paper. T = 0.5 as in the authors' defence code. A learned linear map takes the student's dimensions to the
teacher's when widths differ. Its source puts it on the logits, the network's output: here the final
embedding (layer4), at 0.9 (RepDistiller's alpha for the soft-target term).

The authors' defence code applies it to layer1 only and per position, unpooled: a distribution over channels
at every position (`PerPositionKD`, the `authors` placement, at 1000). Their `DistillKL(0.5)` reduces with
`KLDivLoss(reduction='batchmean')` on the 4-D map: the KL summed over channels *and positions*, divided by the
batch size, times T^2; so its size grows with the map's area (256 positions on the demo's stride-2 layer1, 1024
at the CIFAR stem).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec, Placement, match_spatial, pooled, projection


def kl_soft(s: torch.Tensor, t: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) along `dim`, scaled by T^2; other dimensions kept."""
    log_p_s = F.log_softmax(s / temperature, dim=dim)
    log_p_t = F.log_softmax(t / temperature, dim=dim)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim) * temperature ** 2


def kd_loss(s: torch.Tensor, t: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """s, t [B, D] (or [B, C, H, W], pooled first): KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean."""
    return kl_soft(pooled(s), pooled(t), temperature, dim=1).mean()


class SoftEmbedding(nn.Module):
    def __init__(self, s_channels: int, t_channels: int, temperature: float = 0.5):
        super().__init__()
        self.project, self.temperature = projection(s_channels, t_channels), temperature

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = self.project(s.float().mean(dim=(2, 3), keepdim=True))
        return kd_loss(s, t, self.temperature)


class PerPositionKD(nn.Module):
    """The authors' KD: at each position, KL between the channel distributions of teacher and student, summed over
    channels and positions and averaged over images (`batchmean` on the map)."""

    def __init__(self, s_channels: int, t_channels: int, temperature: float = 0.5):
        super().__init__()
        self.project, self.temperature = projection(s_channels, t_channels), temperature

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, t = match_spatial(self.project(s.float()), t)
        return kl_soft(s, t, self.temperature, dim=1).flatten(1).sum(1).mean()


SPEC = LossSpec("kd", "Knowledge distillation: match the temperature-softened distribution of each pooled "
                "embedding.", SoftEmbedding, cite="Hinton et al., 2015", label="KD", weight=1000.0, source_weights={"layer4": 0.9},
                source_note="the network's output, here the final embedding, at 0.9 (RepDistiller's alpha)",
                authors=Placement("kd", {"layer1": 1000.0}, PerPositionKD,
                                  "the authors' code: per position, over channels, summed over positions, on layer1 only, at 1000",
                                  variant="per-position, layer1"))
