"""What every stage loss shares: its registry entry with its placements, and matching a student stage to a
teacher stage.

A stage loss is an `nn.Module` built once per stage from the student's and teacher's channel counts;
`forward(s, t)` takes the student's and the teacher's outputs of that stage ([B, C, H, W], the teacher's
without gradient) and returns a scalar. Losses that compare channels one to one (AFD, FitNet, KD) learn a
1x1 projection of the student's channels when the widths differ, as FitNet's regressor does; the others
compare batch or spatial statistics and need none. Parameters of a stage loss train with the student.

A **placement** says where a loss applies and how strongly: the stages with their weights, and the module
built there. Each loss has three, so a comparison of losses is not a comparison of placements:
- `source`: where its paper or the loss zoos that reproduce it put it (the default);
- `authors`: what the study's defence code (Han et al., 2024) runs, which for several losses is another form;
- `all-stages`: the paper's form on all four stages at one weight (the lab's earlier, uniform choice).
The final embedding is layer4's output pooled, so a loss that pools (CC, KD) on layer4 is a loss on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...choices import Choice
from ...models.resnet import STAGES

PLACEMENTS = ("source", "authors", "all-stages")
Build = Callable[[int, int], nn.Module]  # (student channels, teacher channels) -> the stage loss module
Weigh = Callable[..., tuple["Placement", dict]]


@dataclass(frozen=True)
class Placement:
    """Stages and weights of one loss, and the module built at each; `note` cites where it comes from and says
    what differs from the paper. A loss may carry its own final-embedding term (`embedding`: MIMIC's clone loss)
    and set its stage weights when the run starts (`weigh`: MIMIC's mutual information)."""
    loss: str
    weights: dict[str, float]
    build: Build
    note: str
    variant: str = ""  # the name of a form other than the paper's (the authors' code's), empty for the paper's
    embedding: float = 0.0       # weight of the loss's own 1 - cos(student, teacher) term on the final embedding
    weigh: Weigh | None = None   # (placement, student, clean images, runtime, **knobs) -> (placement, record)


AUTHORS_WEIGHT = 1000.0  # the defence code's beta on each of the four stages


@dataclass(frozen=True)
class LossSpec(Choice):
    build: Build | None               # the paper's form; None: no teacher term
    weight: float = 0.0               # the one weight of `all-stages`
    source_weights: dict[str, float] = field(default_factory=dict)  # where its source puts it
    source_note: str = ""             # ... said, with the citation
    authors: Placement | None = None  # the defence code's form, where it is not the paper's on four stages at 1000
    embedding: float = 0.0            # its own final-embedding term, under every placement (MIMIC's clone loss)
    weigh: Weigh | None = None        # how its source sets the stage weights at the start (MIMIC), under `source`
    study: bool = True                # one of the six the study compares (MIMIC is its authors' later defence)
    term: str = ""                    # what its stage term is called in a recipe (default: the name, capitals)

    def placement(self, name: str) -> Placement:
        """The named placement (see the module docstring). A loss without a teacher term has none."""
        if self.build is None:
            raise ValueError(f"'{self.name}' has no teacher term, so it has no placement")
        if name == "source":
            return Placement(self.name, dict(self.source_weights), self.build, self.source_note,
                             embedding=self.embedding, weigh=self.weigh)
        if name == "authors":
            return self.authors or Placement(self.name, {s: AUTHORS_WEIGHT for s in STAGES}, self.build,
                                             f"the authors' code: the paper's form on every stage at "
                                             f"{AUTHORS_WEIGHT:g}", embedding=self.embedding)
        if name == "all-stages":
            return Placement(self.name, {s: self.weight for s in STAGES}, self.build,
                             f"the paper's form on every stage at {self.weight:g}", embedding=self.embedding)
        raise ValueError(f"unknown placement {name!r}: choose {', '.join(PLACEMENTS)}")


def match_spatial(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger map to the smaller one's size (mdistiller's rule); float32 for the maths."""
    s, t = s.float(), t.float()
    hs, ht = s.shape[-1], t.shape[-1]
    if hs > ht:
        s = F.adaptive_avg_pool2d(s, t.shape[-2:])
    elif ht > hs:
        t = F.adaptive_avg_pool2d(t, s.shape[-2:])
    return s, t


def pooled(f: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C] float32: a stage's global average (layer4's is the encoder's embedding)."""
    return f.float().flatten(2).mean(2) if f.ndim == 4 else f.float()


def linear_projection(s_channels: int, t_channels: int) -> nn.Module:
    """A learned linear map from student to teacher dimensions of a pooled embedding, or nothing when they agree."""
    return nn.Identity() if s_channels == t_channels else nn.Linear(s_channels, t_channels, bias=False)


def projection(s_channels: int, t_channels: int) -> nn.Module:
    """A learned 1x1 convolution from student to teacher channels, or nothing when they agree."""
    if s_channels == t_channels:
        return nn.Identity()
    conv = nn.Conv2d(s_channels, t_channels, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv
