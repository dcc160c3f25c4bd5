"""Evaluation cost on the demo downstream set (signs: 3,000 train + 1,000 test images, linear probe), with the
shipped demo encoder: feature extraction against a bare inference forward over the same number of ready
tensors, the probe fit, and a whole score (train, clean test and triggered test features, probe, ASR).
The quick estimate behind the live curves (1,000 + 500 images) is timed too.
"""
from __future__ import annotations


import torch

from distill_core.data.triggers import make_trigger
from distill_core.device import Runtime
from distill_core.evaluate.downstream import Downstream
from distill_core.evaluate.features import extract_features
from distill_core.evaluate.probe import fit_probe
from distill_core.models.checkpoint import load_encoder
from distill_core.presets import DEMO_ENCODER
from distill_core.tasks import make_config

from .timing import interleaved

COLUMNS = ["case", "images", "precision", "seconds", "images_per_s", "ceiling_images_per_s", "ratio"]


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    rt = Runtime.create(device, "auto")
    cfg = make_config("evaluate", "demo", {"device": device})
    encoder = rt.module(load_encoder(DEMO_ENCODER)[0]).eval()
    evaluator, quick = (make(cfg, rt, make_trigger("white", 32), "priority") for make in (Downstream, Downstream.quick))
    images = evaluator.train.images
    ready = rt.prepare(torch.rand(512, 3, 32, 32, device=rt.device))

    @torch.inference_mode()
    def ceiling():  # the same number of images through the bare encoder, batches of 512
        for _ in range(0, len(images), 512):
            with rt.autocast():
                encoder(ready)

    t = interleaved({"extract": lambda: extract_features(encoder, images, rt), "ceiling": ceiling},
                    repeats=repeats)
    features = extract_features(encoder, images, rt)
    whole = interleaved({"fit": lambda: fit_probe(features, evaluator.train.labels, len(evaluator.classes), evaluator.probe_cfg),
                         "score": lambda: evaluator.score(encoder), "quick": lambda: quick.estimate(encoder)},
                        repeats=max(1, repeats // 2), warmup=1)
    n_score = len(evaluator.train) + 2 * len(evaluator.test)
    base = {"bench": "evaluation", "precision": rt.precision}
    return [
        {**base, "case": "feature extraction", "images": len(images), "seconds": t["extract"],
         "images_per_s": len(images) / t["extract"], "ceiling_images_per_s": len(images) / t["ceiling"],
         "ratio": t["ceiling"] / t["extract"]},
        {**base, "case": f"probe fit ({evaluator.probe_cfg.kind})", "images": len(images), "seconds": whole["fit"],
         "images_per_s": "", "ceiling_images_per_s": "", "ratio": ""},
        {**base, "case": "whole score", "images": n_score, "seconds": whole["score"],
         "images_per_s": n_score / whole["score"], "ceiling_images_per_s": "", "ratio": ""},
        {**base, "case": "quick estimate (live curves)", "images": len(quick.train) + 2 * len(quick.test),
         "seconds": whole["quick"], "images_per_s": "", "ceiling_images_per_s": "", "ratio": ""},
    ]
