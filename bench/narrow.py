"""Narrow encoders (layer1 under 8 channels): what keeping oneDNN issue #6035's convolutions in NCHW costs.

Distillation steps at the demo batch, at widths 0.0625 and 0.1 (layer1 of 4 and 6 channels): ours (channels-last,
the affected 1x1 stride-2 downsamples in NCHW, as `Runtime.module` builds it) against the whole encoder in NCHW,
and against plain channels-last where that is safe to run: on AVX2 kernels it crashes, hangs or corrupts the
weight gradients, so there that column is empty.
"""
from __future__ import annotations

import contextlib

import torch

from distill_core import cpu_kernels
from distill_core.data.augment import SimCLRAugment
from distill_core.device import Runtime

from .distill import make_distiller
from .timing import interleaved

WIDTHS = (0.0625, 0.1)


@contextlib.contextmanager
def unguarded():
    """Runtime.module without the workaround (only where oneDNN does not run the affected kernel)."""
    keep = cpu_kernels.onednn_6035
    cpu_kernels.onednn_6035 = lambda conv: False
    try:
        yield
    finally:
        cpu_kernels.onednn_6035 = keep


def run(dev: str = "auto", repeats: int = 5) -> list[dict]:
    rt = Runtime.create(dev, "auto")
    if rt.device.type != "cpu":
        return []
    safe = torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "AVX2")  # AVX-512: another kernel
    rows, batch = [], 128
    for width in WIDTHS:
        images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
        gen = torch.Generator().manual_seed(0)
        steppers = {"ours": make_distiller({"width": width}, rt, SimCLRAugment(size=32), gen),
                    "nchw": make_distiller({"width": width}, Runtime.create(dev, rt.precision, channels_last=False),
                                           SimCLRAugment(size=32), gen)}
        if safe:
            with unguarded():
                steppers["plain"] = make_distiller({"width": width}, rt, SimCLRAugment(size=32), gen)
        t = interleaved({k: (lambda d=d: d.step(images)["loss"].item()) for k, d in steppers.items()}, repeats)
        rows.append({"bench": "narrow", "width": width, "precision": rt.precision,
                     "images_per_s": batch / t["ours"], "nchw_images_per_s": batch / t["nchw"],
                     "vs_nchw": t["nchw"] / t["ours"],
                     "plain_images_per_s": batch / t["plain"] if safe else "unsafe here",
                     "vs_plain": t["plain"] / t["ours"] if safe else "unsafe here"})
    return rows


COLUMNS = ["width", "precision", "images_per_s", "nchw_images_per_s", "vs_nchw", "plain_images_per_s", "vs_plain"]
