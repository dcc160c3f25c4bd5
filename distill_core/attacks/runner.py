"""The loop every attack shares, and the invariants that belong to it, kept in one place:
- the clean encoder is frozen (eval mode, no gradients); its embeddings of the (unaugmented) shadow images
  and of the references never change, so they are computed once;
- the poisoned encoder trains with BatchNorm in eval mode and its affine parameters frozen (BadEncoder);
  a ResNet has no other train/eval difference, so the whole poisoned encoder stays in eval mode;
- one forward pass per step over clean, triggered, reference and augmented-reference images together
  (BatchNorm in eval mode makes the batch split irrelevant).
An attack supplies `terms(features, epoch) -> {"loss", ...named terms}` and `end_epoch(epoch, means)`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..config import check
from ..data.augment import SimCLRAugment, to_float
from ..data.datasets import default_target, load_dataset, report_skipped
from ..data.triggers import make_trigger
from ..device import Runtime
from ..evaluate.downstream import Downstream, figures
from ..evaluate.features import extract_features
from ..evaluate.live import LiveCurves
from ..evaluate.memo import file_identity, remembered
from ..training import FORWARD_BACKWARD, planned, train_epochs
from ..models.checkpoint import load_encoder, save_encoder
from ..presets import DEMO_ENCODER
from ..events import CancelToken
from ..files import write_atomic_with
from ..runs.store import Run
from ..ui import save_png
from .badencoder import AttackConfig
from .references import parse_indices, select_references

@dataclass
class Features:
    clean: torch.Tensor         # f'(x)            [B, D]
    triggered: torch.Tensor     # f'(x + trigger)  [B, D]
    refs: torch.Tensor          # f'(r_i)          [k, D]
    refs_aug: torch.Tensor      # f'(aug(r_i))     [k, A, D]
    clean_target: torch.Tensor  # f(x)             [B, D]
    ref_target: torch.Tensor    # f(r_i)           [k, D]


class AttackStep:
    """One step of an attack: a single forward pass over clean, triggered, reference and augmented-reference
    images together, the objective's terms, one SGD step on the poisoned encoder's trainable parameters."""

    def __init__(self, poisoned: torch.nn.Module, objective, rt: Runtime, cfg: AttackConfig, trigger,
                 refs: torch.Tensor, ref_targets: torch.Tensor, augs: int, gen: torch.Generator):
        self.poisoned, self.objective, self.rt, self.trigger, self.gen = poisoned, objective, rt, trigger, gen
        self.refs, self.ref_targets, self.augs = refs, ref_targets, augs
        self.ref_augment = SimCLRAugment(size=refs.shape[-1], scale=(1.0, 1.0), ratio=(1.0, 1.0))  # no crop
        params = [p for p in poisoned.parameters() if p.requires_grad]
        self.opt = rt.optimizer(torch.optim.SGD, params, lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
        self.forward = rt.compiled(poisoned)

    def __call__(self, x: torch.Tensor, clean_target: torch.Tensor, epoch: int) -> dict[str, torch.Tensor]:
        """x: float shadow images on the device; clean_target: the clean encoder's embeddings of them."""
        (b, k), a = (len(x), len(self.refs)), self.augs
        aug = self.ref_augment(self.refs.repeat_interleave(a, 0), self.gen)
        batch = self.rt.prepare(torch.cat((x, self.trigger(x), self.refs, aug)))
        with self.rt.autocast():
            out = self.forward(batch).float()
        f = Features(out[:b], out[b:2 * b], out[2 * b:2 * b + k], out[2 * b + k:].view(k, a, -1),
                     clean_target, self.ref_targets)
        terms = self.objective.terms(f, epoch)
        self.opt.zero_grad(set_to_none=True)
        self.rt.backward(terms["loss"], self.opt)
        return terms


def freeze_for_attack(encoder: torch.nn.Module) -> torch.nn.Module:
    encoder.eval()
    for m in encoder.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            for p in m.parameters():
                p.requires_grad_(False)
    return encoder


def shadow_subset(cfg: AttackConfig):
    full = load_dataset(cfg.data, "train", root=cfg.data_root, download=cfg.download, size=cfg.image_size,
                        seed=cfg.data_seed)
    n = cfg.n_shadow or max(cfg.batch_size, round(cfg.shadow_fraction * len(full)))
    check(n >= cfg.batch_size, "batch_size", f"{cfg.batch_size} is more than the {n} shadow images")
    return full.sample(n, cfg.data_seed)


def attack_plan(cfg: AttackConfig) -> list[dict]:
    """Its steps: each runs clean, triggered, reference and augmented-reference images forward and back."""
    n = cfg.n_shadow or len(shadow_subset(cfg))
    k = len(parse_indices(cfg.ref_indices)) or cfg.n_refs
    images = 2 * cfg.batch_size + k * (1 + (cfg.ref_augs or cfg.batch_size))
    return [planned("", cfg.epochs, n, cfg.batch_size, images * FORWARD_BACKWARD)]


def run_attack(cfg: AttackConfig, attack, run: Run, cancel: CancelToken) -> dict:
    """Poison the clean encoder with `attack` (an `attacks.Attack`; its settings checked by the task); returns
    the summary."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rt = Runtime.create(cfg.device, cfg.precision, compile=cfg.compile)
    gen = torch.Generator(device=rt.device).manual_seed(cfg.seed)
    objective = attack.objective(cfg, gen)  # checks the attack's own settings before any work
    clean_path = cfg.encoder or DEMO_ENCODER
    clean, clean_head, meta = load_encoder(clean_path, with_head=True)
    cfg = replace(cfg, image_size=meta.get("input_size", cfg.image_size))
    clean = rt.module(clean).eval().requires_grad_(False)
    poisoned = freeze_for_attack(copy.deepcopy(clean).requires_grad_(True))

    trigger = make_trigger(cfg.trigger, cfg.image_size)
    target = cfg.target or default_target(cfg.downstream)
    check(target is not None, "target", f"'{cfg.downstream}' has no usual target class: name one")
    evaluator = Downstream(cfg, rt, trigger, target)
    quick = Downstream.quick(cfg, rt, trigger, target) if cfg.eval_every else None
    shadow = shadow_subset(cfg)
    report_skipped(run, shadow, evaluator.train, evaluator.test)
    t = time.perf_counter()
    clean_probe, clean_score, start = remembered(  # the same for every attack on this encoder and task
        ["attack: clean figures", file_identity(clean_path), evaluator.identity, quick and quick.identity],
        lambda: (probe := evaluator.fit(clean), evaluator.score(clean, probe), quick and quick.estimate(clean)))
    ref_images, ref_info = select_references(clean, evaluator, cfg.n_refs, cfg.ref_indices, clean_probe)
    k, a = len(ref_images), cfg.ref_augs or cfg.batch_size
    run({"kind": "log", "message": f"{len(shadow)} shadow images of {cfg.data}; target "
                                   f"'{evaluator.classes[evaluator.target]}' with {k} reference(s); {rt.describe()['name']}, "
                                   f"{rt.precision}", "references": ref_info})
    seconds = {"setup": t - t0}
    shadow_targets = extract_features(clean, shadow.images, rt)
    refs = to_float(ref_images.to(rt.device))
    ref_targets = extract_features(clean, ref_images, rt)
    seconds["evaluate"] = time.perf_counter() - t

    step_fn = AttackStep(poisoned, objective, rt, cfg, trigger, refs, ref_targets, a, gen)
    images = shadow.images.pin_memory() if rt.device.type == "cuda" else shadow.images
    best_state, live = None, LiveCurves(quick, poisoned, run, cfg.eval_every, cfg.epochs)
    live.start(start)  # the starting point of the live curves: the clean encoder's CA and ASR-B

    def shadow_step(idx: torch.Tensor, epoch: int) -> dict:
        x = to_float(images[idx].to(rt.device, non_blocking=True))
        return step_fn(x, shadow_targets[idx.to(rt.device)], epoch)

    t = time.perf_counter()
    for epoch, _, event in train_epochs(shadow_step, n=len(shadow), batch_size=cfg.batch_size, seed=cfg.seed,
                                        epochs=cfg.epochs, cancel=cancel, emit=run, log_every=cfg.log_every):
        extra = objective.end_epoch(epoch, event)  # reads the epoch's mean terms
        if extra.pop("keep", False):
            best_state = {n: v.detach().clone() for n, v in poisoned.state_dict().items()}
            extra["kept"] = True
        event.update(extra)
        if live.due(epoch):
            live.record(epoch, event)
        run(event)
    seconds["train"] = time.perf_counter() - t
    if best_state is not None:
        poisoned.load_state_dict(best_state)

    t = time.perf_counter()
    poisoned_score = evaluator.score(poisoned)
    stealth = {"clean": clean_score["stealth"], "poisoned": poisoned_score["stealth"]}
    seconds["evaluate"] += time.perf_counter() - t
    provenance = {"task": "attack", "attack": attack.name, "run": run.id, "command": run.record.get("command"),
                  "clean_encoder": str(clean_path), "target": evaluator.classes[evaluator.target],
                  "trigger": cfg.trigger, "downstream": cfg.downstream, "references": ref_info}
    save_encoder(run.file("encoder.safetensors"), poisoned, clean_head, provenance)  # the head stays clean, as in BadEncoder
    trigger.save_npz(run.file("trigger.npz"))
    evaluator.save_gallery(run.file("gallery.npz"))
    save_png(run.file("references.png"), ref_images)
    write_atomic_with(run.file("references.npz"),  # for inspection: f(reference)
                      lambda f: np.savez_compressed(f, images=ref_images.numpy()))
    seconds["total"] = time.perf_counter() - t0
    return {"attack": attack.name, "target": evaluator.classes[evaluator.target], "trigger": cfg.trigger,
            "downstream": cfg.downstream, "clean": figures(clean_score), "poisoned": figures(poisoned_score),
            "per_class": {"clean": clean_score["per_class"], "poisoned": poisoned_score["per_class"]},
            "stealth": stealth, "references": ref_info, "kept_best_epoch": best_state is not None,
            "gallery": evaluator.gallery(clean=clean_score, poisoned=poisoned_score),
            "curves": live.curves, "encoder": str(run.file("encoder.safetensors")), "seconds": seconds}

