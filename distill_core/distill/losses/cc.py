"""Correlation congruence: Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019.

Each image's stage feature is globally average-pooled and L2-normalised; the batch's correlation matrix
uses the paper's Gaussian RBF kernel k(x, y) = exp(-gamma |x - y|^2), which for unit vectors equals
exp(-2 gamma) exp(2 gamma x.y) and is approximated by its order-P Taylor expansion
sum_{p=0..P} exp(-2 gamma) (2 gamma)^p / p! (x.y)^p  (the paper's choice: P = 2; gamma = 0.4). The loss is
|C_s - C_t|_F^2 / B^2. Only image-to-image relations are compared, so widths may differ.
Its source puts it on the final embedding (layer4 pooled) at 100 (Knowledge-Distillation-Zoo, which implements
this form; RepDistiller's 0.02 weighs its own, different form).

The authors' defence code (after RepDistiller) computes a product of neighbouring images' feature differences
instead, which is not a correlation, and feeds it each stage's unpooled map: with d = |s - t| [B, C, H, W], the
mean over image pairs (i, i+1) and positions of sum_c d_i d_(i+1) (`ShiftedProduct`, the `authors` placement,
every stage at 1000).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...models.resnet import STAGES
from .base import LossSpec, Placement, match_spatial, pooled, projection


def correlation_matrix(f: torch.Tensor, gamma: float = 0.4, order: int = 2) -> torch.Tensor:
    """[B, C, H, W] or [B, D] -> [B, B] Taylor-approximated Gaussian RBF correlations of unit vectors."""
    v = F.normalize(pooled(f), dim=1)
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


class ShiftedProduct(nn.Module):
    """The authors' `CC`: the product of each image's and the next image's |student - teacher| differences, per
    position of the unpooled maps, summed over channels; a learned 1x1 convolution where widths differ."""

    def __init__(self, s_channels: int, t_channels: int):
        super().__init__()
        self.project = projection(s_channels, t_channels)

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, t = match_spatial(self.project(s.float()), t)
        delta = (s - t).abs()
        return (delta[:-1] * delta[1:]).sum(1).mean()


SPEC = LossSpec("cc", "Correlation congruence: match how similar each pair of images in the batch looks "
                "(a kernel over pooled features).", CorrelationCongruence, cite="Peng et al., ICCV 2019", label="CC", weight=1000.0,
                source_weights={"layer4": 100.0},
                source_note="the final embedding at 100 (Knowledge-Distillation-Zoo)",
                authors=Placement("cc", {s: 1000.0 for s in STAGES}, ShiftedProduct,
                                  "the authors' code: a shifted product of unpooled feature differences, every stage at "
                                  "1000",
                                  variant="shifted product"))
