"""Signed distance functions of the shapes the embedded datasets draw.

Each function takes local coordinates (x, y) of any shape, with the shape centred at the origin and
about one unit in radius, and returns the signed distance to its outline (negative inside). Rendering
(pose, colour, background, clutter) lives in `synthetic.py`.
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def polygon(x: Tensor, y: Tensor, verts: list[tuple[float, float]]) -> Tensor:
    """Exact signed distance to a simple polygon (crossing-number sign, segment distances)."""
    d = torch.full_like(x, float("inf"))
    inside = torch.zeros_like(x, dtype=torch.bool)
    n = len(verts)
    for i in range(n):
        (xi, yi), (xj, yj) = verts[i], verts[i - 1]
        ex, ey = xj - xi, yj - yi
        wx, wy = x - xi, y - yi
        t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0, 1)
        d = torch.minimum(d, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
        crosses = (y >= yi) != (y >= yj)
        x_at = xi + (y - yi) * (xj - xi) / (yj - yi if yj != yi else 1e-12)
        inside ^= crosses & (x < x_at)
    return torch.where(inside, -d.sqrt(), d.sqrt())


def regular(k: int, r: float = 1.0, phase: float = math.pi / 2) -> list[tuple[float, float]]:
    return [(r * math.cos(phase + 2 * math.pi * i / k), r * math.sin(phase + 2 * math.pi * i / k)) for i in range(k)]


def star_verts(k: int, outer: float, inner: float) -> list[tuple[float, float]]:
    out = []
    for i in range(2 * k):
        r = outer if i % 2 == 0 else inner
        a = math.pi / 2 + math.pi * i / k
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def disk(x, y, r=1.0, cx=0.0, cy=0.0):
    return ((x - cx) ** 2 + (y - cy) ** 2).sqrt() - r


def box(x, y, hw, hh, cx=0.0, cy=0.0):
    qx, qy = (x - cx).abs() - hw, (y - cy).abs() - hh
    outside = (qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2).sqrt()
    return outside + torch.maximum(qx, qy).clamp(max=0)


def union(*ds):
    out = ds[0]
    for d in ds[1:]:
        out = torch.minimum(out, d)
    return out


def subtract(a, b):
    return torch.maximum(a, -b)


def hollow(d, thickness):
    return d.abs() - thickness


# --- shapes of the pre-training set: distinct under any rotation ----------------------------------
PRETRAIN_SHAPES = {
    "disk": lambda x, y: disk(x, y, 0.9),
    "square": lambda x, y: box(x, y, 0.75, 0.75),
    "triangle": lambda x, y: polygon(x, y, regular(3, 1.0)),
    "star": lambda x, y: polygon(x, y, star_verts(5, 1.0, 0.45)),
    "plus": lambda x, y: union(box(x, y, 0.95, 0.28), box(x, y, 0.28, 0.95)),
    "ring": lambda x, y: hollow(disk(x, y, 0.7), 0.22),
    "crescent": lambda x, y: subtract(disk(x, y, 0.95), disk(x, y, 0.8, 0.45, 0.1)),
    "arrow": lambda x, y: polygon(x, y, [(-0.95, -0.25), (0.15, -0.25), (0.15, -0.7), (0.95, 0.0),
                                         (0.15, 0.7), (0.15, 0.25), (-0.95, 0.25)]),
    "bar": lambda x, y: box(x, y, 0.95, 0.26),
    "heart": lambda x, y: union(disk(x, y, 0.5, -0.45, 0.3), disk(x, y, 0.5, 0.45, 0.3),
                                polygon(x, y, [(-0.93, 0.15), (0.0, -0.95), (0.93, 0.15)])),
}

# --- symbols of the downstream "signs" set, drawn upright-ish on a sign plate ----------------------
SIGN_SYMBOLS = {
    "x-mark": lambda x, y: union(box(x * 0.7071 + y * 0.7071, y * 0.7071 - x * 0.7071, 0.95, 0.2),
                                 box(x * 0.7071 - y * 0.7071, y * 0.7071 + x * 0.7071, 0.95, 0.2)),
    "priority": lambda x, y: subtract(box(x, y, 0.8, 0.8), box(x, y, 0.45, 0.45)),
    "yield": lambda x, y: hollow(polygon(x, y, regular(3, 0.95, -math.pi / 2)), 0.14),
    "no-entry": lambda x, y: subtract(disk(x, y, 0.9), box(x, y, 0.65, 0.2)),
    "ahead": lambda x, y: polygon(x, y, [(-0.22, -0.9), (0.22, -0.9), (0.22, 0.1), (0.6, 0.1), (0.0, 0.9),
                                         (-0.6, 0.1), (-0.22, 0.1)]),
    "crossing": lambda x, y: union(box(x, y, 0.85, 0.16, 0, 0.45), box(x, y, 0.85, 0.16, 0, -0.45),
                                   box(x, y, 0.16, 0.85, 0.45, 0), box(x, y, 0.16, 0.85, -0.45, 0)),
    "dots": lambda x, y: union(disk(x, y, 0.3, -0.5, 0), disk(x, y, 0.3, 0.5, 0)),
    "hexagon": lambda x, y: polygon(x, y, regular(6, 0.9, 0.0)),
    "bowtie": lambda x, y: union(polygon(x, y, [(-0.9, -0.7), (0.0, 0.0), (-0.9, 0.7)]),
                                 polygon(x, y, [(0.9, -0.7), (0.0, 0.0), (0.9, 0.7)])),
    "target": lambda x, y: union(hollow(disk(x, y, 0.75), 0.13), disk(x, y, 0.28)),
}
