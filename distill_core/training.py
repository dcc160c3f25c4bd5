"""Pieces every training loop shares (pre-training, attacks, the defence).

- `epoch_batches`: the seeded shuffle of one epoch, full batches only (the reference loaders' drop_last);
  a run and its resume see the same order because it depends on (seed, epoch) alone.
- `Meter`: sums named loss terms on the device and reads them off the device once, at the epoch's end, so
  steps do not wait for the host; a term that became NaN or infinite stops the run there, with a message.
"""
from __future__ import annotations

import math

import torch


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return list(order[: (n // batch_size) * batch_size].split(batch_size))


class Meter:
    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, v in terms.items():
            self.sums[name] = self.sums.get(name, 0) + v.detach()
        self.count += 1

    def means(self) -> dict[str, float]:
        means = {name: float(v) / max(self.count, 1) for name, v in self.sums.items()}
        diverged = [name for name, v in means.items() if not math.isfinite(v)]
        if diverged:
            raise FloatingPointError(f"training diverged ({', '.join(diverged)} became NaN or infinite): "
                                     f"lower the learning rate")
        return means
