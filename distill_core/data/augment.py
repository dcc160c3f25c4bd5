"""Batched SimCLR augmentations on tensors, on the training device.

Same recipe as BadEncoder's CIFAR-10 pre-training transform (torchvision): RandomResizedCrop(size,
scale 0.08-1, ratio 3/4-4/3), horizontal flip p 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
RandomGrayscale p 0.2. Differences from the per-image PIL pipeline, all for speed:
- crops are resampled bilinearly by `grid_sample` with continuous (unrounded) box sizes;
- the four jitter operations run in one random order per batch rather than per image.
Every image still gets its own crop box, flip, jitter factors and grayscale draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float [0, 1]."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images -> uint8 [0, 255] (clamped, rounded): how images are stored."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    w = x.new_tensor(GRAY).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, (g - b) / safe,
                    torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack((h, s, maxc), 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    k = torch.arange(3, device=x.device, dtype=x.dtype).view(1, 3, 1, 1) * 4 + 5  # 5, 9, 13 for r, g, b
    k = (k + h.unsqueeze(1) * 6) % 6
    f = (torch.minimum(k, 4 - k)).clamp(0, 1)
    return v.unsqueeze(1) - v.unsqueeze(1) * s.unsqueeze(1) * f


def crop_boxes(n: int, scale: tuple, ratio: tuple, gen: torch.Generator | None, device) -> torch.Tensor:
    """RandomResizedCrop boxes as fractions of the image: rows of (cx, cy, w, h) in [-1, 1] units.

    Draws ten candidates per image like torchvision and keeps the first that fits; images with none
    fall back to the whole image (torchvision's fallback for in-range aspect ratios).
    """
    tries = 10
    area = torch.empty(n, tries, device=device).uniform_(*scale, generator=gen)
    log_r = torch.empty(n, tries, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    aspect = log_r.exp()
    w, h = (area * aspect).sqrt(), (area / aspect).sqrt()
    ok = (w <= 1) & (h <= 1)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
    pick = first.clamp(min=0).unsqueeze(1)
    w = torch.where(first >= 0, w.gather(1, pick).squeeze(1), torch.ones(n, device=device))
    h = torch.where(first >= 0, h.gather(1, pick).squeeze(1), torch.ones(n, device=device))
    cx = (torch.rand(n, device=device, generator=gen) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, device=device, generator=gen) * 2 - 1) * (1 - h)
    return torch.stack((cx, cy, w, h), 1)


@dataclass
class SimCLRAugment:
    size: int = 32
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    gray_p: float = 0.2

    def __call__(self, images: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = to_float(images)
        n, dev = x.shape[0], x.device
        x = self.crop_flip(x, gen)
        x = self.color_jitter(x, gen)
        gray = torch.rand(n, device=dev, generator=gen) < self.gray_p
        return torch.where(gray.view(n, 1, 1, 1), grayscale(x).expand_as(x), x)

    def crop_flip(self, x: torch.Tensor, gen) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        cx, cy, w, h = crop_boxes(n, self.scale, self.ratio, gen, dev).unbind(1)
        flip = torch.where(torch.rand(n, device=dev, generator=gen) < self.flip_p, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        grid = F.affine_grid(theta, (n, 3, self.size, self.size), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def color_jitter(self, x: torch.Tensor, gen) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        on = (torch.rand(n, device=dev, generator=gen) < self.jitter_p).view(n, 1, 1, 1)
        b, c, s, hue = self.jitter

        def factor(lo: float, hi: float, identity: float) -> torch.Tensor:
            f = torch.empty(n, 1, 1, 1, device=dev).uniform_(lo, hi, generator=gen)
            return torch.where(on, f, torch.full_like(f, identity))

        ops = {
            0: lambda y: (y * factor(max(0, 1 - b), 1 + b, 1)).clamp(0, 1),
            1: lambda y: _blend(y, grayscale(y).mean((2, 3), keepdim=True), factor(max(0, 1 - c), 1 + c, 1)),
            2: lambda y: _blend(y, grayscale(y), factor(max(0, 1 - s), 1 + s, 1)),
            3: lambda y: _shift_hue(y, factor(-hue, hue, 0)),
        }
        # One order per batch, drawn on the CPU (a device generator would force a sync).
        cpu_gen = gen if gen is not None and gen.device.type == "cpu" else None
        for i in torch.randperm(4, generator=cpu_gen).tolist():
            x = ops[i](x)
        return x


def _blend(x: torch.Tensor, other: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f * x + (1 - f) * other).clamp(0, 1)


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    hsv = rgb_to_hsv(x)
    h = (hsv[:, :1] + shift) % 1.0
    return hsv_to_rgb(torch.cat((h, hsv[:, 1:]), 1))

