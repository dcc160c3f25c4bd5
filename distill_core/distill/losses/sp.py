"""Similarity-preserving distillation: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.

The stage output of a batch, flattened to Q [B, C*H*W], gives the Gram matrix G = Q Q^T; each row is
L2-normalised; the loss is |G_s - G_t|_F^2 / B^2. Only image-to-image similarities are compared, so widths
may differ. The weight 3000 is the paper's gamma for CIFAR-10. The authors' defence code runs its
`SP` option without any similarity matrix (a cosine term on final features); this is the paper's loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec


def similarity_matrix(f: torch.Tensor) -> torch.Tensor:
    q = f.float().flatten(1)
    return F.normalize(q @ q.T, dim=1)


def sp_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (similarity_matrix(s) - similarity_matrix(t)).pow(2).mean()


class SimilarityPreserving(nn.Module):
    def __init__(self, s_channels: int, t_channels: int):
        super().__init__()

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sp_loss(s, t)


SPEC = LossSpec("sp", "Similarity preserving: match the batch's image-to-image similarity (Gram) matrices.",
                "Tung & Mori, ICCV 2019", SimilarityPreserving, weight=3000.0)
