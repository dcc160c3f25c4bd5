"""Small image helpers for displays (app pages, CLI figures); plain tensors in, numpy out."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid


def image_grid(images: torch.Tensor, columns: int = 8, scale: int = 1, padding: int = 1) -> np.ndarray:
    """uint8 or [0, 1] float images [N, 3, H, W] -> one HxWx3 uint8 picture, optionally upscaled."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    grid = make_grid(x.clamp(0, 1), nrow=columns, padding=padding, pad_value=1.0)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_png(path, images: torch.Tensor, columns: int = 8, scale: int = 4) -> None:
    """Write images [N, 3, H, W] as one PNG grid (for run directories and reports)."""
    from PIL import Image
    Image.fromarray(image_grid(images, columns=min(columns, len(images)), scale=scale)).save(path)
