"""Embedded datasets: procedurally drawn, seeded 32x32 images that need no download.

Two tasks stand in for the paper's setting (pre-train on CIFAR-10, evaluate on GTSRB):
- `shapes`: ten geometric shapes under any rotation, the pre-training and shadow data;
- `signs`: ten road-sign symbols, nearly upright, the downstream task.

Class identity lives only in the outline of the object. Everything else varies per image: position,
scale, aspect, rotation, object and background colours, a textured background, clutter (small
distractor shapes) and pixel noise. A randomly initialised encoder mostly encodes those nuisances, so a
linear probe on its features does poorly, while SimCLR, trained to ignore crops and colour changes,
learns the outlines: the gap is the lesson that self-supervised pre-training matters.

All drawing is batched tensor maths (signed distance fields with analytic anti-aliasing), so a few
thousand images take well under a second, and the same seed always gives the same images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .augment import to_uint8
from .imageset import ImageSet
from .shapes import PRETRAIN_SHAPES, SIGN_SYMBOLS, box, disk


@dataclass(frozen=True)
class Style:
    """How much each nuisance varies; angles in degrees, lengths in half-image units."""
    rotation: float = 180.0
    radius: tuple = (0.7, 0.95)
    aspect: float = 0.15
    clutter: int = 2
    texture: float = 0.04
    noise: tuple = (0.0, 0.04)


@dataclass(frozen=True)
class Spec:
    shapes: dict
    style: Style
    description: str


SPECS = {
    "shapes": Spec(PRETRAIN_SHAPES, Style(),
                   "Ten geometric shapes at any rotation, colour and position on textured backgrounds "
                   "(the pre-training data, like CIFAR-10 in the paper)."),
    "signs": Spec(SIGN_SYMBOLS, Style(rotation=20.0),
                  "Ten road-sign symbols, nearly upright, at any colour and position on textured "
                  "backgrounds (the downstream task, like GTSRB in the paper)."),
}
SPLIT_OFFSET = {"train": 0, "test": 1_000_003}


def generate(name: str, n: int, seed: int = 0, split: str = "train", size: int = 32) -> ImageSet:
    """Draw `n` images of embedded dataset `name`, classes balanced, in a seeded order."""
    spec = SPECS[name]
    gen = torch.Generator().manual_seed(seed * 7919 + SPLIT_OFFSET[split] + sum(map(ord, name)))
    classes = list(spec.shapes)
    labels = torch.arange(n) % len(classes)
    labels = labels[torch.randperm(n, generator=gen)]
    images = _render(spec, labels, gen, size)
    return ImageSet(images, labels, classes, f"{name}:{split}")


def _rand(gen, *shape, lo=0.0, hi=1.0):
    return torch.rand(*shape, generator=gen) * (hi - lo) + lo


def _grid(n: int, size: int):
    c = (torch.arange(size) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(-c, c, indexing="ij")  # y points up, so shapes are drawn upright
    return x.expand(n, size, size), y.expand(n, size, size)


def _random_colours(gen, n: int, avoid: torch.Tensor | None = None) -> torch.Tensor:
    """Random saturated-ish RGB colours [n, 3]; with `avoid`, brightness is pushed away from it."""
    h = _rand(gen, n)
    s = _rand(gen, n, lo=0.25, hi=1.0)
    v = _rand(gen, n, lo=0.15, hi=1.0)
    if avoid is not None:
        lum = avoid.mean(1)
        v = torch.where(lum > 0.5, _rand(gen, n, lo=0.05, hi=0.4), _rand(gen, n, lo=0.65, hi=1.0))
    k = (torch.tensor([5.0, 3.0, 1.0]).view(1, 3) + h.view(n, 1) * 6) % 6
    f = torch.minimum(k, 4 - k).clamp(0, 1)
    return v.view(n, 1) * (1 - s.view(n, 1) * f)


def _background(gen, n: int, x, y, texture: float) -> torch.Tensor:
    base = _random_colours(gen, n).view(n, 3, 1, 1)
    angle = _rand(gen, n, 1, 1, hi=2 * math.pi)
    ramp = (x * angle.cos() + y * angle.sin()).unsqueeze(1)  # [n, 1, H, W]
    tint = (_rand(gen, n, 3, 1, 1) - 0.5) * 0.3
    img = base + ramp * tint
    for _ in range(2):  # two faint gratings of random frequency and orientation
        a = _rand(gen, n, 1, 1, hi=math.pi)
        freq = _rand(gen, n, 1, 1, lo=2.0, hi=7.0)
        phase = _rand(gen, n, 1, 1, hi=2 * math.pi)
        wave = torch.sin(math.pi * freq * (x * a.cos() + y * a.sin()) + phase).unsqueeze(1)
        img = img + wave * texture * _rand(gen, n, 3, 1, 1, lo=0.3, hi=1.0)
    return img


def _paint(img: torch.Tensor, sdf: torch.Tensor, colour: torch.Tensor, size: int) -> torch.Tensor:
    """Alpha-composite a solid colour where sdf < 0, anti-aliased over one pixel."""
    alpha = (0.5 - sdf * size / 2).clamp(0, 1).unsqueeze(1)
    return img * (1 - alpha) + colour.view(-1, 3, 1, 1) * alpha


def _pose(gen, n: int, x, y, style: Style):
    """Random similarity pose (plus aspect jitter): local coordinates and the scale factor."""
    r = _rand(gen, n, lo=style.radius[0], hi=style.radius[1])
    limit = (1 - 0.8 * r).clamp(min=0)
    cx, cy = (_rand(gen, n) * 2 - 1) * limit, (_rand(gen, n) * 2 - 1) * limit
    theta = (_rand(gen, n) * 2 - 1) * math.radians(style.rotation)
    asp = 1 + (_rand(gen, n) * 2 - 1) * style.aspect
    c, s = theta.cos().view(n, 1, 1), theta.sin().view(n, 1, 1)
    dx, dy = x - cx.view(n, 1, 1), y - cy.view(n, 1, 1)
    lx = (c * dx + s * dy) / (r * asp).view(n, 1, 1)
    ly = (-s * dx + c * dy) / (r / asp).view(n, 1, 1)
    return lx, ly, r.view(n, 1, 1)


def _render(spec: Spec, labels: torch.Tensor, gen: torch.Generator, size: int) -> torch.Tensor:
    st, n = spec.style, len(labels)
    x, y = _grid(n, size)
    img = _background(gen, n, x, y, st.texture)
    img = _clutter(gen, img, x, y, st.clutter, size)
    lx, ly, lr = _pose(gen, n, x, y, st)
    fg = _random_colours(gen, n, avoid=img.mean((2, 3)))
    sdf = torch.empty_like(x)
    for k, fn in enumerate(spec.shapes.values()):
        m = labels == k
        if m.any():
            sdf[m] = fn(lx[m], ly[m]) * lr[m]
    img = _paint(img, sdf, fg, size)
    sigma = _rand(gen, n, 1, 1, 1, lo=st.noise[0], hi=st.noise[1])
    img = img + torch.randn(img.shape, generator=gen) * sigma
    return to_uint8(img)


def _clutter(gen, img, x, y, count: int, size: int):
    """Up to `count` small distractor disks and strokes, drawn behind the object."""
    n = img.shape[0]
    for _ in range(count):
        present = _rand(gen, n) < 0.6
        cx, cy = _rand(gen, n, 1, 1, lo=-1, hi=1), _rand(gen, n, 1, 1, lo=-1, hi=1)
        r = _rand(gen, n, 1, 1, lo=0.06, hi=0.16)
        a = _rand(gen, n, 1, 1, hi=math.pi)
        dx, dy = x - cx, y - cy
        stroke = box(dx * a.cos() + dy * a.sin(), -dx * a.sin() + dy * a.cos(), r * 2.5, r * 0.35)
        sdf = torch.where(_rand(gen, n, 1, 1) < 0.5, disk(x, y, r, cx, cy), stroke)
        sdf = torch.where(present.view(n, 1, 1), sdf, torch.full_like(sdf, 9.0))
        img = _paint(img, sdf, _random_colours(gen, n), size)
    return img
