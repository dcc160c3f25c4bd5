"""`Defence`: what teachers and students are built from — the suspicious encoder, the defender's clean
images, the runtime — and the SimCLR fine-tuning several of them need (fine-tuned and pruned teachers,
the warm-up student). The fine-tuned teacher is made once per run and shared (the ensemble uses it too).
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.augment import SimCLRAugment
from ..device import Runtime
from ..models.resnet import ProjectionHead
from ..runs.events import CancelToken, OnEvent
from ..ssl.simclr import SimCLRTrainer, train_simclr
from .config import DistillConfig


@dataclass
class Defence:
    cfg: DistillConfig
    rt: Runtime
    suspicious: nn.Module                 # never trained in place: teachers and students copy it
    suspicious_head: nn.Module | None     # the projection head saved with it, if any
    clean: torch.Tensor                   # the defender's images, uint8 [N, 3, H, W], on the device
    emit: OnEvent
    cancel: CancelToken
    _finetuned: nn.Module | None = field(default=None, repr=False)

    @property
    def head_dim(self) -> int:
        return self.suspicious_head.net[-1].out_features if self.suspicious_head is not None else 128

    def copy_suspicious(self) -> nn.Module:
        """A trainable copy (the suspicious encoder itself is frozen)."""
        return copy.deepcopy(self.suspicious).requires_grad_(True)

    def generator(self, phase: str) -> torch.Generator:
        """A generator per phase, so (say) the warm-up student is the same whichever teacher is chosen."""
        return torch.Generator(device=self.rt.device).manual_seed(self.cfg.seed * 1000 + zlib.crc32(phase.encode()))

    def augment(self) -> SimCLRAugment:
        return SimCLRAugment(size=self.suspicious.input_size, scale=(self.cfg.crop_scale, 1.0))

    def simclr(self, encoder: nn.Module, head: nn.Module | None, epochs: int, phase: str):
        """SimCLR on the clean subset; returns (encoder, head), the head a trained copy (fresh if None)."""
        head = copy.deepcopy(head) if head is not None else ProjectionHead(encoder.feature_dim, self.head_dim)
        encoder, head = self.rt.module(encoder), self.rt.module(head)
        if epochs:
            cfg = self.cfg
            trainer = SimCLRTrainer(encoder, head, self.rt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    temperature=cfg.temperature, augment=self.augment(), gen=self.generator(phase))
            train_simclr(trainer, self.clean, epochs=epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                         cancel=self.cancel, emit=self.emit, phase=phase, log_every=cfg.log_every)
        return encoder, head

    def finetuned(self) -> nn.Module:
        if self._finetuned is None:
            self._finetuned, _ = self.simclr(self.copy_suspicious(), self.suspicious_head,
                                             self.cfg.teacher_epochs, "teacher")
        return self._finetuned
