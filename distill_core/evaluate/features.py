"""Frozen-feature extraction: an encoder in eval mode over an image tensor, in batches, no gradients."""
from __future__ import annotations

from typing import Callable

import torch

from ..data.augment import to_float
from ..device import Runtime
from ..events import cancel_point


@torch.inference_mode()
def extract_features(encoder: torch.nn.Module, images: torch.Tensor, runtime: Runtime, batch_size: int = 512,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Features [N, D] in fp32 on the runtime's device. `transform` (e.g. a trigger) sees [0, 1] floats."""
    was_training = encoder.training
    encoder.eval()
    out = []
    for chunk in images.split(batch_size):
        cancel_point()
        x = to_float(chunk.to(runtime.device, non_blocking=True))
        if transform is not None:
            x = transform(x)
        with runtime.autocast():
            out.append(encoder(runtime.prepare(x)).float())
    encoder.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
