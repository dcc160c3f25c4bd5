"""Correlation congruence: Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019.

Each image's stage feature is globally average-pooled and L2-normalised; the batch's correlation matrix
uses the paper's Gaussian RBF kernel k(x, y) = exp(-gamma |x - y|^2), which for unit vectors equals
exp(-2 gamma) exp(2 gamma x.y) and is approximated by its order-P Taylor expansion
sum_{p=0..P} exp(-2 gamma) (2 gamma)^p / p! (x.y)^p  (the paper's choice: P = 2; gamma = 0.4). The loss is
|C_s - C_t|_F^2 / B^2. Only image-to-image relations are compared, so widths may differ.
The authors' defence code (after RepDistiller) computes a product of neighbouring feature differences
instead, which is not a correlation; this is the paper's definition.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec


def correlation_matrix(f: torch.Tensor, gamma: float = 0.4, order: int = 2) -> torch.Tensor:
    """[B, C, H, W] or [B, D] -> [B, B] Taylor-approximated Gaussian RBF correlations of unit vectors."""
    v = F.normalize(f.float().flatten(2).mean(2) if f.ndim == 4 else f.float(), dim=1)
    dot = v @ v.T
    return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dot.pow(p) for p in range(order + 1))


def cc_loss(s: torch.Tensor, t: torch.Tensor, gamma: float = 0.4, order: int = 2) -> torch.Tensor:
    return (correlation_matrix(s, gamma, order) - correlation_matrix(t, gamma, order)).pow(2).mean()


class CorrelationCongruence(nn.Module):
    def __init__(self, s_channels: int, t_channels: int, gamma: float = 0.4, order: int = 2):
        super().__init__()
        self.gamma, self.order = gamma, order

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return cc_loss(s, t, self.gamma, self.order)


SPEC = LossSpec("cc", "Correlation congruence: match how similar each pair of images in the batch looks "
                "(a kernel over pooled features).", "Peng et al., ICCV 2019", CorrelationCongruence, weight=1000.0)
