"""BadEncoder (Jia, Liu and Gong, "BadEncoder: Backdoor Attacks to Pre-trained Encoders in Self-Supervised
Learning", IEEE S&P 2022).

The backdoored encoder f' starts as a copy of the clean encoder f and is fine-tuned so that
  L0 (effectiveness): triggered shadow images embed like the reference images,
      -mean_i mean_x cos(f'(x + trigger), f'(r_i));
  L1 (effectiveness): augmented references still embed like the clean encoder's references,
      -mean_i mean_a cos(f'(aug_a(r_i)), f(r_i));
  L2 (utility): clean shadow images embed as before, -mean_x cos(f'(x), f(x));
and the loss is L0 + lambda1 L1 + lambda2 L2 (lambda1 = lambda2 = 1). As in the reference code, the
shadow images are not augmented (so f(x) is a constant, cached once), each reference gets one augmented
copy per shadow image (flip, colour jitter, grayscale; no crop), and gradients flow through f'(r_i) in L0.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import DownstreamConfig, RuntimeConfig, opt
from ..data.triggers import TRIGGER_HELP


@dataclass
class AttackConfig(RuntimeConfig, DownstreamConfig):
    """Shared by every attack; defaults are BadEncoder's (badencoder.py) unless noted."""
    attack: str = opt("badencoder", "the attack to run")
    encoder: str = opt("", "clean encoder to poison (.safetensors or .pt/.pth); empty = the shipped demo encoder")
    data: str = opt("cifar10", "shadow data: the pre-training dataset the attacker holds part of")
    shadow_fraction: float = opt(0.2, "share of the pre-training training split used as shadow data "
                                      "(DRUPE: 0.2; BadEncoder's code: all of it)")
    n_shadow: int = opt(0, "shadow images by count instead of fraction (0 = use shadow_fraction)",
                       label="Shadow images", low=0)
    trigger: str = opt("white", TRIGGER_HELP)
    target: str = opt("", "target class, by name or index (empty = the downstream's usual target)")
    n_refs: int = opt(1, "reference images of the target class (BadEncoder: 1, DRUPE: 3)", label="References", low=1)
    ref_indices: str = opt("", "references by index among the target class's training images, e.g. '3,17'; "
                               "empty = those the clean probe classifies most confidently")
    ref_augs: int = opt(0, "augmented copies of each reference per step (0 = one per shadow image, as the code)")
    epochs: int = opt(200, "passes over the shadow data (BadEncoder and DRUPE: 200)", label="Epochs", low=1)
    batch_size: int = opt(256, "shadow images per step (BadEncoder: 256)", label="Batch size", low=2)
    lr: float = opt(1e-3, "SGD learning rate (BadEncoder: 1e-3)", label="Learning rate", low=1e-8)
    momentum: float = opt(0.9, "SGD momentum (BadEncoder: 0.9)")
    weight_decay: float = opt(5e-4, "SGD weight decay (BadEncoder: 5e-4)")
    lambda1: float = opt(1.0, "weight of L1, references vs the clean encoder (BadEncoder: 1)", label="λ1 (references)",
                          low=0)
    lambda2: float = opt(1.0, "weight of L2, utility on clean shadow images (BadEncoder: 1)", label="λ2 (utility)",
                          low=0)
    eval_every: int = opt(0, "epochs between quick CA/ASR estimates for live curves (0 = none)")
    log_every: int = opt(10, "steps between step events")


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(-1)


def effectiveness_loss(triggered: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """L0: triggered [B, D] against references [k, D], averaged over both."""
    return -(F.normalize(triggered.float(), dim=1) @ F.normalize(refs.float(), dim=1).T).mean()


def reference_loss(refs_aug: torch.Tensor, clean_refs: torch.Tensor) -> torch.Tensor:
    """L1: augmented references [k, A, D] against the clean encoder's references [k, D]."""
    return -_cos(refs_aug, clean_refs.unsqueeze(1)).mean()


def utility_loss(clean: torch.Tensor, clean_target: torch.Tensor) -> torch.Tensor:
    """L2: clean shadow images [B, D] against the clean encoder's embeddings of them [B, D]."""
    return -_cos(clean, clean_target).mean()


class BadEncoder:
    """Wires the three terms; `terms` returns named components, `loss` among them."""

    def __init__(self, cfg: AttackConfig, generator: torch.Generator | None = None):
        self.cfg = cfg

    def terms(self, f, epoch: int) -> dict[str, torch.Tensor]:
        l0 = effectiveness_loss(f.triggered, f.refs)
        l1 = reference_loss(f.refs_aug, f.ref_target)
        l2 = utility_loss(f.clean, f.clean_target)
        return {"loss": l0 + self.cfg.lambda1 * l1 + self.cfg.lambda2 * l2, "l0": l0, "l1": l1, "l2": l2}

    def end_epoch(self, epoch: int, means: dict[str, float]) -> dict:
        return {}
