"""Distillation step throughput (AT on all four stages) against the ceiling and a reference-style loop.

Ours: `Distiller.step` on raw uint8 images: two batched augmentations, one student pass over both views that
also yields the stage outputs, one frozen-teacher pass over the first view, InfoNCE + stage losses, Adam.
Ceiling: the same student's forward+backward on ready random views (2N) plus one teacher forward (N),
loss = sum, no optimiser. Reference-style: the authors' loop shape (`distillation.py`): the student runs
each view separately, the teacher runs once for its embedding, then student and teacher run again to
collect stage outputs. Ratios are of times measured interleaved in the same run.
"""
from __future__ import annotations

import torch

from distill_core.data.augment import SimCLRAugment
from distill_core.device import Runtime
from distill_core.distill.losses import LOSSES
from distill_core.distill.losses.at import at_loss
from distill_core.distill.teachers import FrozenTeacher
from distill_core.distill.distiller import Distiller
from distill_core.models.resnet import ProjectionHead, cifar_resnet18
from distill_core.ssl.simclr import info_nce

from . import shapes
from .timing import flops, interleaved


def cases(rt: Runtime) -> list[tuple]:
    """(label, encoder shape, batch): the demo's batch; full width at a CPU-sized batch, or the study's 128 on a GPU."""
    demo, full = shapes.demo(), shapes.full()
    return [(shapes.label("demo", demo), demo, 128), (shapes.label("full", full), full, 128 if rt.device.type == "cuda" else 32)]


def make_distiller(shape: dict, rt: Runtime, augment: SimCLRAugment, gen: torch.Generator) -> Distiller:
    """A fresh student and teacher of this shape (`cifar_resnet18`'s arguments), AT on all four stages at the
    study's weight."""
    torch.manual_seed(0)
    student = rt.module(cifar_resnet18(**shape))
    head = rt.module(ProjectionHead(student.feature_dim))
    teacher = rt.module(FrozenTeacher(cifar_resnet18(**shape)))
    return Distiller(student, head, teacher, LOSSES["at"].placement("authors"), rt, lr=1e-3,
                     weight_decay=1e-6, temperature=0.5, augment=augment, gen=gen)


def bench_case(shape: dict, batch: int, rt: Runtime, repeats: int) -> dict:
    augment, gen = SimCLRAugment(size=32), torch.Generator(device=rt.device).manual_seed(0)
    distiller = make_distiller(shape, rt, augment, gen)
    student, head, teacher, weights = distiller.student, distiller.head, distiller.teacher, distiller.weights
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=rt.device)
    views = rt.prepare(torch.rand(2 * batch, 3, 32, 32, device=rt.device))

    def ours():
        distiller.step(images)["loss"].item()

    def ceiling():
        student.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        with rt.autocast():
            out = head(student(views))
            teacher(views[:batch])
        out.float().sum().backward()

    def reference():
        student.train()
        head.train()
        v1, v2 = rt.prepare(augment(images, gen)), rt.prepare(augment(images, gen))
        with rt.autocast():
            z1, z2 = head(student(v1)), head(student(v2))
            teacher.encoder(v1)  # the teacher's embedding, computed and (in the reference) barely used
            _, t_maps = teacher.encoder(v1, stages=True)
            _, s_maps = student(v1, stages=True)
            loss = info_nce(z1, z2) + sum(w * at_loss(s_maps[i], t_maps[i]) for i, w in enumerate(weights.values()))
        distiller.opt.zero_grad(set_to_none=True)
        rt.backward(loss, distiller.opt)
        loss.item()

    t = interleaved({"ours": ours, "ceiling": ceiling, "reference": reference}, repeats=repeats)
    return {"images_per_s": batch / t["ours"], "ceiling_images_per_s": batch / t["ceiling"],
            "ratio": t["ceiling"] / t["ours"], "reference_images_per_s": batch / t["reference"],
            "vs_reference": t["reference"] / t["ours"], "tflops": flops(ours) / t["ours"] / 1e12}


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rt = Runtime.create(device, "auto")
    return [{"bench": "distill step", "model": label, "batch": batch, "precision": rt.precision,
             **bench_case(shape, batch, rt, repeats)} for label, shape, batch in cases(rt)]


COLUMNS = ["model", "batch", "precision", "images_per_s", "ceiling_images_per_s", "ratio",
           "reference_images_per_s", "vs_reference", "tflops"]
