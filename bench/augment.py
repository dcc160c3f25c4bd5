"""Augmentation supply against demand at the demo size: views/s the batched SimCLR augmentation produces
(two views of a 128-image batch, on the training device) against views/s the distillation step consumes.

The augmentation runs inside the step on the same cores, so supply/demand also says what share of the step
it takes (1 / ratio). Target (2-core CPU): supply >= 3x demand.
"""
from __future__ import annotations

import torch

from distill_core.data.augment import SimCLRAugment
from distill_core.device import Runtime

from . import shapes
from .distill import make_distiller
from .timing import interleaved

COLUMNS = ["model", "batch", "precision", "produced_views_per_s", "consumed_views_per_s", "supply_over_demand"]


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rt = Runtime.create(device, "auto")
    batch = 128
    augment, gen = SimCLRAugment(size=32, scale=(0.2, 1.0)), torch.Generator(device=rt.device).manual_seed(0)
    demo = shapes.demo()
    distiller = make_distiller(demo, rt, augment, gen)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=rt.device)

    def produce():
        rt.prepare(torch.cat((augment(images, gen), augment(images, gen)))).sum().item()

    t = interleaved({"produce": produce, "consume": lambda: distiller.step(images)["loss"].item()}, repeats=repeats)
    return [{"bench": "augmentation", "model": shapes.label("demo", demo), "batch": batch, "precision": rt.precision,
             "produced_views_per_s": 2 * batch / t["produce"], "consumed_views_per_s": 2 * batch / t["consume"],
             "supply_over_demand": t["consume"] / t["produce"]}]
