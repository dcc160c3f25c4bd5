"""Attribution speed on the shipped demo encoder: Grad-CAM for 16 images and Integrated Gradients (32 steps)
for 8, against one plain forward+backward of the same images (the least any gradient method must do).

Targets (2-core CPU): Grad-CAM 16 images <= 1 s, IG 8 images <= 5 s. IG needs 32 passes over the
batch, so its ideal ratio is about 32; Grad-CAM's is about 1.
"""
from __future__ import annotations

import torch

from distill_core.inspect.attribution import SimilarityToReference, attribute
from distill_core.models.checkpoint import load_encoder
from distill_core.presets import DEMO_ENCODER

from .timing import interleaved

COLUMNS = ["case", "images", "seconds", "ceiling_s", "ratio_to_ceiling", "target_s"]
CASES = [("Grad-CAM layer4", "gradcam", 16, {}, 1.0), ("Integrated Gradients, 32 steps", "ig", 8, {"steps": 32}, 5.0)]


def run(device: str = "auto", repeats: int = 5) -> list[dict]:
    torch.manual_seed(0)
    encoder = load_encoder(DEMO_ENCODER)[0].eval().requires_grad_(False)
    model = SimilarityToReference(encoder, torch.rand(1, 3, 32, 32))
    rows = []
    for label, method, n, options, target in CASES:
        x = torch.rand(n, 3, 32, 32)

        def ceiling():
            xi = x.clone().requires_grad_(True)
            model(xi).sum().backward()

        times = interleaved({"ours": lambda: attribute(method, model, x, 0, "layer4", **options),
                             "ceiling": ceiling}, repeats=repeats)
        rows.append({"bench": "inspect", "case": label, "images": n, "seconds": times["ours"],
                     "ceiling_s": times["ceiling"], "ratio_to_ceiling": times["ours"] / times["ceiling"],
                     "target_s": target})
    return rows
