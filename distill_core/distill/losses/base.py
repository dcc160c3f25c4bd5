"""What every stage loss shares: its registry entry, and matching a student stage to a teacher stage.

A stage loss is an `nn.Module` built once per stage from the student's and teacher's channel counts;
`forward(s, t)` takes the student's and the teacher's outputs of that stage ([B, C, H, W], the teacher's
without gradient) and returns a scalar. Losses that compare channels one to one (AFD, FitNet, KD) learn a
1x1 projection of the student's channels when the widths differ, as FitNet's regressor does; the others
compare batch or spatial statistics and need none. Parameters of a stage loss train with the student.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LossSpec:
    name: str
    title: str                                   # one line for the app and the CLI
    source: str                                  # the paper that defines it
    build: Callable[[int, int], nn.Module] | None  # (student channels, teacher channels) -> module; None: no teacher term
    weight: float = 0.0                          # default weight of every stage


def match_spatial(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger map to the smaller one's size (mdistiller's rule); float32 for the maths."""
    s, t = s.float(), t.float()
    hs, ht = s.shape[-1], t.shape[-1]
    if hs > ht:
        s = F.adaptive_avg_pool2d(s, t.shape[-2:])
    elif ht > hs:
        t = F.adaptive_avg_pool2d(t, s.shape[-2:])
    return s, t


def projection(s_channels: int, t_channels: int) -> nn.Module:
    """A learned 1x1 convolution from student to teacher channels, or nothing when they agree."""
    if s_channels == t_channels:
        return nn.Identity()
    conv = nn.Conv2d(s_channels, t_channels, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv
