"""Numbers from attributions and embeddings: how much of an encoder's attention sits on the trigger."""
from __future__ import annotations

import torch


def trigger_share(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image, the fraction of positive attribution mass inside the trigger mask.

    maps: [B, H, W] attributions; mask: [H, W] or [1, H, W] with 1 on trigger pixels. A map that ignores
    position scores the mask's area fraction; one that sees only the trigger scores 1. An all-zero map
    scores the area fraction too (no evidence either way)."""
    m = (mask.reshape(maps.shape[-2:]) > 0).to(maps.dtype)
    pos = maps.clamp_min(0)
    total = pos.sum((1, 2))
    inside = (pos * m).sum((1, 2))
    area = m.mean()
    return torch.where(total > 0, inside / total.clamp_min(1e-12), area)
