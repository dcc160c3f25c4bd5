"""Pieces every training loop shares (pre-training, attacks, the defence).

- `train_epochs`: the one epoch loop: seeded batches, a cancel point before each step, step events, and each
  epoch's event with its loss means, handed to the caller to add its evaluations and checkpoints before sending.
- `epoch_batches`: the seeded shuffle of one epoch, full batches only (the reference loaders' drop_last);
  a run and its resume see the same order because it depends on (seed, epoch) alone.
- `Meter`: sums named loss terms on the device and reads them off the device once, at the epoch's end, so
  steps do not wait for the host; a term that became NaN or infinite stops the run there, with a message.
- `planned`: one part of a job's plan (`runs/progress.py`), its cost in image passes through an encoder;
  with `passes_per_second` (this device's measured speed) a page says before a run how long it takes here.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import torch

from .models.resnet import cifar_resnet18


FORWARD, FORWARD_BACKWARD = 1, 3  # image passes: an image through an encoder, and through it and back


def planned(part: str, epochs: int, n: int, batch_size: int, passes_per_step: int) -> dict:
    """One part of a job's plan: `epochs` of full batches of `n` images (as `epoch_batches` draws them)."""
    return {"part": part, "steps": epochs * (n // batch_size), "cost": passes_per_step}


def simclr_passes(batch_size: int) -> int:
    """A SimCLR step: two views of each image, forward and backward."""
    return 2 * batch_size * FORWARD_BACKWARD


def passes_per_second(rt, shape: dict, batch_size: int = 64, steps: int = 3) -> float:
    """Image passes per second of a training step of an encoder of this `shape` (`cifar_resnet18`'s arguments) on
    `rt`'s device, measured over a few steps after one to warm up (about a second on a laptop CPU at the demo's size)."""
    encoder = rt.module(cifar_resnet18(**shape))
    opt = rt.optimizer(torch.optim.SGD, encoder.parameters(), lr=0.0)
    size = encoder.input_size
    x = rt.prepare(torch.rand(batch_size, 3, size, size, device=rt.device))

    def step():
        with rt.autocast():
            loss = encoder(x).float().square().mean()
        opt.zero_grad(set_to_none=True)
        rt.backward(loss, opt)
        loss.detach().item()  # waits for the device

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size * FORWARD_BACKWARD / (time.perf_counter() - t)


def train_epochs(step: Callable[[torch.Tensor, int], dict[str, torch.Tensor]], *, n: int, batch_size: int,
                 seed: int, epochs: int, cancel, emit, log_every: int, phase: str = "", done: tuple[int, int] = (0, 0),
                 ) -> Iterator[tuple[int, int, dict]]:
    """Run `step(batch indices, epoch) -> {term: loss tensor}` over epochs of seeded full batches of `n` images,
    from the epoch after `done` = (epochs, steps) already run. Sends a step event every `log_every` steps and
    yields (epoch, steps so far, the epoch's event with its loss means) for the caller to complete and send."""
    total, (first, steps) = epochs * (n // batch_size), done
    tag = {"phase": phase} if phase else {}
    for epoch in range(first + 1, epochs + 1):
        meter = Meter()
        for idx in epoch_batches(n, batch_size, seed, epoch):
            cancel.check()
            terms = step(idx, epoch)
            meter.add(terms)
            steps += 1
            if steps % log_every == 0 or steps == total:
                emit({"kind": "step", **tag, "step": steps, "total": total, "epoch": epoch,
                      **{name: float(v.detach()) for name, v in terms.items()}})
        yield epoch, steps, {"kind": "epoch", **tag, "epoch": epoch, "epochs": epochs, **meter.means()}


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
