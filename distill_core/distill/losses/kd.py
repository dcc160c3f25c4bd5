"""Knowledge distillation: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015.

An encoder has no class logits, so the softened distributions are over embedding dimensions: each stage's
output is globally average-pooled (for layer4 this is the encoder's embedding), divided by the temperature
T and soft-maxed; the loss is KL(teacher || student) averaged over the batch and scaled by T^2, as in the
paper. T = 0.5 as in the authors' defence code (which applies it to one stage's unpooled map, per
position). A learned linear map takes the student's dimensions to the teacher's when widths differ.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec, projection


def kd_loss(s: torch.Tensor, t: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """s, t [B, D] (or [B, C, H, W], pooled first): KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean."""
    s, t = (x.float().flatten(2).mean(2) if x.ndim == 4 else x.float() for x in (s, t))
    log_p_s = F.log_softmax(s / temperature, dim=1)
    log_p_t = F.log_softmax(t / temperature, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * temperature ** 2


class SoftEmbedding(nn.Module):
    def __init__(self, s_channels: int, t_channels: int, temperature: float = 0.5):
        super().__init__()
        self.project, self.temperature = projection(s_channels, t_channels), temperature

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = self.project(s.float().mean(dim=(2, 3), keepdim=True))
        return kd_loss(s, t, self.temperature)


SPEC = LossSpec("kd", "Knowledge distillation: match the temperature-softened distribution of each pooled "
                "embedding.", "Hinton et al., 2015", SoftEmbedding, weight=1000.0)
