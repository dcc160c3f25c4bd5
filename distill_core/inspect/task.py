"""The `inspect` task: attribution maps and the trigger-attention share for a story's encoders.

For N triggered test images (the target class left out) and each encoder of the story (clean, poisoned,
purified), it writes `attention.png` (rows: encoders; top: the triggered images) and reports, per encoder,
the mean and spread of the trigger-attention share and of the cosine similarity of triggered embeddings to
the target reference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..config import RuntimeConfig, check, opt
from ..data.augment import to_float
from ..device import Runtime
from ..models.resnet import STAGES
from ..events import CancelToken
from ..runs.registry import Task
from ..runs.store import Run
from ..runs.table import ROLE_LABELS, ROLES
from ..ui import heat_overlay, save_labelled_rows
from .attention import attention, spread
from .attribution import METHODS, QUANTITIES, default_method, gradcam_stage
from .story import load_story


@dataclass
class InspectConfig(RuntimeConfig):
    run: str = opt("", "the story to inspect: an attack, distill or pipeline run directory")
    method: str = opt("auto", "attribution method: gradcam, ig, saliency, occlusion or smoothgrad; auto: Grad-CAM "
                              "at the CIFAR stem, Integrated Gradients after a stride-2 stem, whose coarse maps "
                              "Grad-CAM loses the trigger on")
    stage: str = opt("auto", "stage Grad-CAM explains: layer1 .. layer4 (the last convolutional stage, as "
                             "Grad-CAM's authors use); auto: the deepest whose maps are at least 4 px on the "
                             "embedded data, 8 px on photos, where coarser maps blur the trigger into the texture")
    quantity: str = opt("predicted", "what is explained: predicted (the downstream probe's logit for its predicted "
                                     "class), target (its logit for the target class) or similarity (cosine to the "
                                     "target reference embedding)")
    n_images: int = opt(64, "triggered test images (the target class left out)")
    batch_size: int = opt(32, "images per attribution call")
    show: int = opt(8, "images drawn in attention.png")


def validate(cfg: InspectConfig) -> None:
    check(bool(cfg.run), "run", "name the run to inspect (--run DIR)")
    check(cfg.method in ("auto", *METHODS), "method", f"unknown '{cfg.method}'; choose auto, {', '.join(METHODS)}")
    check(cfg.stage in ("auto", *STAGES), "stage", f"unknown '{cfg.stage}'; choose auto, {', '.join(STAGES)}")
    check(cfg.quantity in QUANTITIES, "quantity", f"unknown '{cfg.quantity}'; choose {', '.join(QUANTITIES)}")
    check(cfg.n_images >= 1, "n_images", f"must be at least 1, not {cfg.n_images}")
    check(cfg.batch_size >= 1, "batch_size", f"must be at least 1, not {cfg.batch_size}")


def inspect_run(cfg: InspectConfig, run: Run, cancel: CancelToken) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rt = Runtime.create(cfg.device, "fp32")  # gradients of the explained value, at full precision
    story = load_story(cfg.run)
    images = story.test_images(cfg.n_images)
    x = story.trigger(to_float(images.images))
    method = default_method(story.shape) if cfg.method == "auto" else cfg.method
    stage = gradcam_stage(story.downstream["downstream"], story.shape) if cfg.stage == "auto" else cfg.stage
    run({"kind": "log", "message": f"{method} on {stage if method == 'gradcam' else 'pixels'} of "
                                   f"{len(x)} triggered {story.downstream['downstream']} images; "
                                   f"roles {', '.join(story.weights)}"})
    cancel.check()
    seen = attention(story, story.encoders(), x, method, stage, cfg.quantity, rt, cfg.batch_size)
    share = {role: spread(a["share"]) for role, a in seen.items()}
    similarity = {role: spread(a["similarity"]) for role, a in seen.items()}
    for role in seen:
        run({"kind": "log", "message": f"{role}: trigger share {share[role]['mean']:.1%}, similarity to the target "
                                       f"reference {similarity[role]['mean']:.3f}"})
    shown = x[:cfg.show].cpu()
    rows = {"image": shown, **{ROLE_LABELS[r]: heat_overlay(shown, a["maps"][:cfg.show]) for r, a in seen.items()}}
    save_labelled_rows(run.file("attention.png"), rows, scale_note=f"{method} attribution of each encoder, "
                                                                     f"each map scaled to its own maximum")
    area = (story.trigger.mask > 0).float().mean().item()
    ratios = {f"{role}/clean": share[role]["mean"] / max(share["clean"]["mean"], 1e-12)
              for role in ROLES[1:] if role in share}
    return {"task": "inspect", "run": str(cfg.run), "method": method, "stage": stage,
            "quantity": cfg.quantity, "n_images": len(x), "target": story.target, "mask_area": area,
            "trigger_share": share, "share_ratio": ratios, "target_similarity": similarity,
            "roles": list(seen), "image": str(run.file("attention.png")),
            "seconds": {"total": time.perf_counter() - t0}}


INSPECT_TASK = Task("inspect", InspectConfig, inspect_run, "Where do a story's encoders look on triggered images? "
                    "Attribution maps and the trigger-attention share.", validate)
