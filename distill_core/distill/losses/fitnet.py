"""FitNets hints: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

The student's stage output, through a learned convolutional regressor where the widths differ (a 1x1
convolution; none when they agree), regresses the teacher's stage output. The paper's loss is
1/2 |u_h - r(v_g)|^2; this is its mean over elements, as in RepDistiller and the authors' defence code
(`HintLoss`, an MSE), so the weight does not grow with the map size. The paper trains hints in a separate
first stage; here, as in the defence, the hint term is added to the student's objective throughout.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import LossSpec, match_spatial, projection


def hint_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    s, t = match_spatial(s, t)
    return (s - t).pow(2).mean()


class Hint(nn.Module):
    def __init__(self, s_channels: int, t_channels: int):
        super().__init__()
        self.regressor = projection(s_channels, t_channels)

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return hint_loss(self.regressor(s.float()), t)


SPEC = LossSpec("fitnet", "FitNets hints: regress the teacher's feature maps themselves (through a learned "
                "regressor when widths differ).", Hint, cite="Romero et al., ICLR 2015", label="FitNet", weight=1000.0,
                source_weights={"layer2": 100.0},
                source_note="one hint, layer2, at 100 (RepDistiller's hint layer and beta); the paper's "
                            "separate hint stage is not run: the hint trains alongside, as in the defence")
