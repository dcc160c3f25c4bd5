"""`--compile`: the distillation step through torch.compile against the same step eager, in the same run.

Reports the first compiled step's time (tracing and code generation included) and the steady-state speed-up,
so the compile time can be weighed against a run's length.
"""
from __future__ import annotations

import time

import torch

from distill_core.data.augment import SimCLRAugment
from distill_core.device import Runtime

from .distill import cases, make_distiller
from .timing import interleaved

COLUMNS = ["model", "batch", "precision", "compile_s", "eager_images_per_s", "compiled_images_per_s", "speedup"]


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rows = []
    for label, shape, batch in cases(Runtime.create(device, "auto")):
        steps = {}
        for compiled in (False, True):
            rt = Runtime.create(device, "auto", compile=compiled)
            augment, gen = SimCLRAugment(size=32), torch.Generator(device=rt.device).manual_seed(0)
            steps[compiled] = make_distiller(shape, rt, augment, gen)
        images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=rt.device)
        t = time.perf_counter()
        steps[True].step(images)["loss"].item()
        compile_s = time.perf_counter() - t
        times = interleaved({c: (lambda d=d: d.step(images)["loss"].item()) for c, d in steps.items()},
                            repeats=repeats)
        rows.append({"bench": "compile", "model": label, "batch": batch, "precision": rt.precision,
                     "compile_s": compile_s, "eager_images_per_s": batch / times[False],
                     "compiled_images_per_s": batch / times[True], "speedup": times[False] / times[True]})
    return rows
