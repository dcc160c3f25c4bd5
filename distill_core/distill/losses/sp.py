"""Similarity-preserving distillation: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.

The stage output of a batch, flattened to Q [B, C*H*W], gives the Gram matrix G = Q Q^T; each row is
L2-normalised; the loss is |G_s - G_t|_F^2 / B^2. Only image-to-image similarities are compared, so widths
may differ. Its source places it on the last stage at gamma = 3000 (the paper's CIFAR-10 value; RepDistiller and
mdistiller on the last stage's map).

The authors' defence code runs its `SP` option without any similarity matrix: minus the cosine of the
student's and teacher's final embeddings, at weight 1 (`NegativeCosine`, the `authors` placement).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import LossSpec, Placement, linear_projection, pooled


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


class NegativeCosine(nn.Module):
    """The authors' `SP`: -cos(student embedding, teacher embedding), batch mean, on the pooled stage output (the
    final embedding on layer4). A learned linear map takes the student's dimensions to the teacher's when widths
    differ (their student and teacher always agree)."""

    def __init__(self, s_channels: int, t_channels: int):
        super().__init__()
        self.project = linear_projection(s_channels, t_channels)

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -F.cosine_similarity(self.project(pooled(s)), pooled(t), dim=1).mean()


SPEC = LossSpec("sp", "Similarity preserving: match the batch's image-to-image similarity (Gram) matrices.",
                SimilarityPreserving, cite="Tung & Mori, ICCV 2019", label="SP", weight=3000.0, source_weights={"layer4": 3000.0},
                source_note="the last stage at 3000 (the paper's gamma; RepDistiller, mdistiller)",
                authors=Placement("sp", {"layer4": 1.0}, NegativeCosine,
                                  "the authors' code: minus the cosine of the final embeddings at 1, no similarity "
                                  "matrix", variant="-cos of final embeddings"))
