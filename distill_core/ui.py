"""Small image helpers for displays (app pages, CLI figures); plain tensors in, numpy out."""
from __future__ import annotations

import numpy as np
import torch

from .data.augment import to_float, to_uint8
from .files import write_atomic_with


def image_grid(images: torch.Tensor, columns: int = 8, scale: int = 1, padding: int = 1) -> np.ndarray:
    """uint8 or [0, 1] float images [N, 3, H, W] -> one HxWx3 uint8 picture, optionally upscaled."""
    x = to_float(images).clamp(0, 1)
    n, c, h, w = x.shape
    if n == 1:  # a lone image has no frame (as torchvision's make_grid)
        grid = x[0]
    else:
        columns = min(columns, n)
        rows = -(-n // columns)
        grid = x.new_ones(c, rows * (h + padding) + padding, columns * (w + padding) + padding)  # white gaps
        for i, image in enumerate(x):
            top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
            grid[:, top:top + h, left:left + w] = image
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return to_uint8(grid).permute(1, 2, 0).numpy()


def save_png(path, images: torch.Tensor, columns: int = 8, scale: int = 4) -> None:
    """Write images [N, 3, H, W] as one PNG grid (for run directories and reports)."""
    from PIL import Image
    grid = Image.fromarray(image_grid(images, columns=min(columns, len(images)), scale=scale))
    write_atomic_with(path, lambda f: grid.save(f, format="PNG"))


def save_labelled_rows(path, rows: dict[str, torch.Tensor], scale: int = 4, scale_note: str = "") -> None:
    """Rows of images [N, 3, H, W], each named at its left, over the heat maps' colour scale and `scale_note`:
    a picture that still reads when it is taken out of the lab (a PNG)."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default(size=14)
    grids = [Image.fromarray(image_grid(x, columns=len(x), scale=scale)) for x in rows.values()]
    label_w, bar_h = 12 + max(int(font.getlength(name)) for name in rows), 54
    width = label_w + max(g.width for g in grids)
    canvas = Image.new("RGB", (width, sum(g.height for g in grids) + bar_h), "white")
    draw, y = ImageDraw.Draw(canvas), 0
    for name, grid in zip(rows, grids):
        canvas.paste(grid, (label_w, y))
        draw.text((6, y + grid.height // 2), name, fill="black", font=font, anchor="lm")
        y += grid.height
    ramp = heat(torch.linspace(0, 1, 256).view(1, 1, 256).expand(1, 14, 256))[0]
    bar_w = min(256, width - label_w - 12)
    canvas.paste(Image.fromarray(to_uint8(ramp).permute(1, 2, 0).numpy()).resize((bar_w, 14)), (label_w, y + 8))
    draw.text((label_w - 6, y + 15), "low", fill="black", font=font, anchor="rm")
    draw.text((label_w + bar_w + 6, y + 15), "high", fill="black", font=font, anchor="lm")
    draw.text((label_w, y + 28), scale_note, fill="black", font=font)
    write_atomic_with(path, lambda f: canvas.save(f, format="PNG"))


def unit_maps(maps: torch.Tensor) -> torch.Tensor:
    """Non-negative maps [N, H, W], each divided by its maximum."""
    return maps / maps.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)


def heat(maps: torch.Tensor) -> torch.Tensor:
    """Non-negative maps [N, H, W] -> 'hot' colour images [N, 3, H, W] in [0, 1], each scaled to its maximum."""
    v = unit_maps(maps)
    return torch.stack(((3 * v).clamp(0, 1), (3 * v - 1).clamp(0, 1), (3 * v - 2).clamp(0, 1)), 1)


def heat_overlay(images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """Images [N, 3, H, W] in [0, 1] (dimmed to grey) under their attribution heat maps [N, H, W]."""
    grey = images.float().mean(1, keepdim=True).expand(-1, 3, -1, -1) * 0.5
    weight = alpha * unit_maps(maps).unsqueeze(1)
    return grey * (1 - weight) + heat(maps) * weight
