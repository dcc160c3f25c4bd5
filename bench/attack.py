"""Attack step throughput (BadEncoder, DRUPE) against the ceiling, at the demo preset's batch composition.

Ours: `AttackStep` on float shadow images: augmented reference copies, the trigger pasted, one forward pass of
the poisoned encoder (eval-mode BatchNorm) over clean + triggered + references + augmented references, the
attack's terms (DRUPE at a late epoch, so all of its terms run, sliced Wasserstein included), SGD.
Ceiling: the same encoder's forward+backward over a ready random tensor of the same size, loss = sum.
Images/s counts shadow images (each also goes through triggered).
"""
from __future__ import annotations

import torch

from distill_core.attacks import ATTACKS
from distill_core.attacks.runner import AttackStep, freeze_for_attack
from distill_core.data.triggers import make_trigger
from distill_core.device import Runtime
from distill_core.models.resnet import cifar_resnet18

from . import shapes
from .timing import flops, interleaved

COLUMNS = ["attack", "model", "batch", "precision", "images_per_s", "ceiling_images_per_s", "ratio", "tflops"]


def cases(rt: Runtime) -> list[tuple]:
    """(label, encoder shape, shadow batch, augmented copies per reference): the demo's, then full width."""
    demo, full = [(shapes.label(name, s), s) for name, s in (("demo", shapes.demo()), ("full", shapes.full()))]
    if rt.device.type == "cuda":
        return [(*demo, 256, 32), (*full, 256, 256)]
    return [(*demo, 128, 32), (*full, 32, 32)]


def bench_case(name: str, shape: dict, batch: int, augs: int, rt: Runtime, repeats: int) -> dict:
    torch.manual_seed(0)
    attack = ATTACKS[name]
    cfg = attack.config(batch_size=batch, ref_augs=augs, lr=0.01)
    gen = torch.Generator(device=rt.device).manual_seed(0)
    encoder = freeze_for_attack(rt.module(cifar_resnet18(**shape)))
    k = cfg.n_refs
    refs = torch.rand(k, 3, 32, 32, device=rt.device)
    step = AttackStep(encoder, attack.objective(cfg, gen), rt, cfg, make_trigger("white", 32), refs,
                      torch.randn(k, encoder.feature_dim, device=rt.device), augs, gen)
    x = torch.rand(batch, 3, 32, 32, device=rt.device)
    target = torch.randn(batch, encoder.feature_dim, device=rt.device)
    ready = rt.prepare(torch.rand(2 * batch + k + k * augs, 3, 32, 32, device=rt.device))
    late = 1000  # past every DRUPE schedule boundary

    def ours():
        step(x, target, late)["loss"].item()

    def ceiling():
        encoder.zero_grad(set_to_none=True)
        with rt.autocast():
            out = encoder(ready)
        out.float().sum().backward()

    t = interleaved({"ours": ours, "ceiling": ceiling}, repeats=repeats)
    return {"images_per_s": batch / t["ours"], "ceiling_images_per_s": batch / t["ceiling"],
            "ratio": t["ceiling"] / t["ours"], "tflops": flops(ours) / t["ours"] / 1e12}


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rt = Runtime.create(device, "auto")
    return [{"bench": "attack step", "attack": name, "model": label, "batch": batch, "precision": rt.precision,
             **bench_case(name, shape, batch, augs, rt, repeats)}
            for name in ("badencoder", "drupe") for label, shape, batch, augs in cases(rt)]
