"""SimCLR (Chen et al., ICML 2020) as BadEncoder pre-trains its CIFAR encoders.

`info_nce` is the NT-Xent loss: for each of the 2N augmented views, cross-entropy of its positive among
the other 2N - 1 views, cosine similarities divided by the temperature (0.5 in BadEncoder). It equals
BadEncoder's `-log(exp(pos/t) / sum_{k != i} exp(sim_ik/t))` but is computed as a masked log-softmax,
which cannot overflow.

`SimCLRTrainer` is the step shared by pre-training, the fine-tuned teacher and the warm-up student
(`train_simclr` runs it for some epochs):
both views go through the encoder in one batch (one BatchNorm batch of 2N, where BadEncoder runs the
views separately: same objective, one pass instead of two).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import SimCLRAugment
from ..device import Runtime
from ..training import train_epochs


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    n = z1.shape[0]
    z = F.normalize(torch.cat((z1, z2)).float(), dim=1)
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat((torch.arange(n, 2 * n), torch.arange(n))).to(z.device)
    return F.cross_entropy(logits, target)


class SimCLRTrainer:
    """Owns encoder + head + optimiser; `step(batch)` takes raw uint8 images and returns the loss tensor."""

    def __init__(self, encoder: nn.Module, head: nn.Module, runtime: Runtime, *, lr: float = 1e-3,
                 weight_decay: float = 1e-6, temperature: float = 0.5, augment: SimCLRAugment | None = None,
                 gen: torch.Generator | None = None):
        self.encoder, self.head, self.rt = encoder, head, runtime
        self.temperature = temperature
        self.augment = augment or SimCLRAugment(size=encoder.input_size)
        self.gen = gen
        params = list(encoder.parameters()) + list(head.parameters())
        self.opt = runtime.optimizer(torch.optim.Adam, params, lr=lr, weight_decay=weight_decay)
        self.loss = runtime.compiled(self.loss)

    def step(self, batch: torch.Tensor) -> torch.Tensor:
        self.encoder.train()
        self.head.train()
        batch = batch.to(self.rt.device, non_blocking=True)
        views = self.rt.prepare(torch.cat((self.augment(batch, self.gen), self.augment(batch, self.gen))))
        loss = self.loss(views)
        self.opt.zero_grad(set_to_none=True)
        self.rt.backward(loss, self.opt)
        return loss.detach()

    def loss(self, views: torch.Tensor) -> torch.Tensor:
        """InfoNCE of both views [2N, ...] in one encoder+head pass."""
        with self.rt.autocast():
            z = self.head(self.encoder(views))
        n = len(views) // 2
        return info_nce(z[:n], z[n:], self.temperature)


def train_simclr(trainer: SimCLRTrainer, images: torch.Tensor, *, epochs: int, batch_size: int, seed: int,
                 cancel, emit, phase: str, log_every: int = 10) -> None:
    """`epochs` passes of SimCLR over uint8 `images`, events tagged with `phase` (e.g. "teacher", "warmup")."""
    for _, _, event in train_epochs(lambda idx, _: {"loss": trainer.step(images[idx])}, n=len(images),
                                    batch_size=batch_size, seed=seed, epochs=epochs, cancel=cancel, emit=emit,
                                    log_every=log_every, phase=phase):
        emit(event)
