"""SimCLR step throughput against the same model's bare forward+backward (the ceiling).

Ours: `SimCLRTrainer.step` on raw uint8 images: two batched augmentations, one encoder+head pass over
both views, InfoNCE, backward, Adam step. Ceiling: encoder+head forward and backward on ready random
float tensors of the same 2N views, loss = sum, no optimiser. Ratio = ours / ceiling, same settings.
"""
from __future__ import annotations

import torch

from distill_core.device import Runtime
from distill_core.models.resnet import ProjectionHead, cifar_resnet18
from distill_core.ssl.simclr import SimCLRTrainer

from . import shapes
from .timing import flops, interleaved

def cases(rt: Runtime) -> list[tuple]:
    """(label, encoder shape, batch): CPU-sized batches, or BadEncoder's pre-training batch (256) on a GPU."""
    demo, full = shapes.demo(), shapes.full()
    gpu = rt.device.type == "cuda"
    return [(shapes.label("demo", demo), demo, 512 if gpu else 256), (shapes.label("full", full), full, 256 if gpu else 64)]


def bench_case(shape: dict, batch: int, rt: Runtime, repeats: int) -> dict:
    torch.manual_seed(0)
    enc = rt.module(cifar_resnet18(**shape))
    head = rt.module(ProjectionHead(enc.feature_dim))
    trainer = SimCLRTrainer(enc, head, rt, gen=torch.Generator(device=rt.device).manual_seed(0))
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=rt.device)
    views = rt.prepare(torch.rand(2 * batch, 3, 32, 32, device=rt.device))

    def ours():
        trainer.step(images).item()

    def ceiling():
        enc.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        with rt.autocast():
            out = head(enc(views))
        out.float().sum().backward()

    t = interleaved({"ours": ours, "ceiling": ceiling}, repeats=repeats)
    return {"images_per_s": batch / t["ours"], "ceiling_images_per_s": batch / t["ceiling"],
            "ratio": t["ceiling"] / t["ours"], "tflops": flops(ours) / t["ours"] / 1e12}


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rows = []
    for precision in ("fp32", "auto"):
        for channels_last in ((False, True) if precision == "fp32" else (True,)):
            rt = Runtime.create(device, precision, channels_last)
            for label, shape, batch in cases(rt):
                r = bench_case(shape, batch, rt, repeats)
                rows.append({"bench": "simclr step", "model": label, "batch": batch, "precision": rt.precision,
                             "channels_last": channels_last, **r})
    return rows


COLUMNS = ["model", "batch", "precision", "channels_last", "images_per_s", "ceiling_images_per_s", "ratio", "tflops"]
