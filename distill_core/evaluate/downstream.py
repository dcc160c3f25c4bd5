"""Scoring an encoder on a downstream task: frozen features -> probe -> CA, ASR, ASR-all, per class.

`Downstream` loads the task's splits once and fixes the trigger and target class, so the clean, poisoned
and purified encoders of a story are all scored the same way (ASR-B is `score(clean_encoder)["asr"]`).
"""
from __future__ import annotations

import hashlib
from dataclasses import fields, replace

import numpy as np
import torch

from ..config import DownstreamConfig
from ..data.augment import to_float, to_uint8
from ..data.datasets import class_names, load_dataset
from ..data.triggers import Trigger
from ..device import Runtime
from ..files import write_atomic_with
from .distribution import stealth_figures
from .features import extract_features
from .metrics import accuracy, attack_success, per_class_accuracy
from .probe import Probe, ProbeConfig, fit_probe

FIGURES = ("ca", "asr", "asr_all")  # the headline figures of a score, as fractions
# Live curves score on fewer test images, but their probe needs about as many training images a class as the final
# one: on the CIFAR-10 sample a DRUPE encoder's live ASR read 56% / 72% / 79% with 100 / 200 / 300 a class, against
# 80.5% final (300 a class); a BadEncoder one 84.5% / 92% / 91% against 92.6%.
QUICK_TEST = 500
QUICK_PER_CLASS = 300
GALLERY_SIZE = 16  # triggered test images whose predictions a score keeps, for the app's galleries


def figures(score: dict) -> dict:
    return {m: score[m] for m in FIGURES if m in score}


class Downstream:
    def __init__(self, cfg: DownstreamConfig, runtime: Runtime, trigger: Trigger | None = None,
                 target: str | int | None = None):
        common = dict(root=cfg.data_root, download=cfg.download, size=cfg.image_size, seed=cfg.data_seed)
        self.train = load_dataset(cfg.downstream, "train", n=cfg.n_downstream_train or None, **common)
        self.test = load_dataset(cfg.downstream, "test", n=cfg.n_downstream_test or None, **common)
        self.classes = self.train.classes
        self.runtime, self.trigger = runtime, trigger
        self.target = self.train.class_index(target) if target not in (None, "") else None
        self.probe_cfg = ProbeConfig(kind=cfg.probe, epochs=cfg.probe_epochs, standardize=cfg.probe_standardize,
                                     seed=cfg.data_seed)
        self.identity = {"task": {f.name: getattr(cfg, f.name) for f in fields(DownstreamConfig)},
                         "target": self.target, "runtime": [str(runtime.device), runtime.precision, runtime.channels_last],
                         "trigger": trigger and hashlib.sha1(trigger.pattern.cpu().numpy().tobytes()
                                                             + trigger.mask.cpu().numpy().tobytes()).hexdigest()}

    def fit(self, encoder: torch.nn.Module) -> Probe:
        features = extract_features(encoder, self.train.images, self.runtime)
        return fit_probe(features, self.train.labels, len(self.classes), self.probe_cfg)

    def score(self, encoder: torch.nn.Module, probe: Probe | None = None) -> dict:
        """CA and per-class accuracy; with a trigger and target also ASR, ASR-all (fractions) and the
        stealth figures of the triggered embeddings (see `distribution.stealth_figures`)."""
        probe = probe or self.fit(encoder)
        labels = self.test.labels
        clean = extract_features(encoder, self.test.images, self.runtime)
        pred = probe.predict(clean)
        out = {"ca": accuracy(pred, labels), "per_class": per_class_accuracy(pred, labels, self.classes)}
        if self.trigger is not None and self.target is not None:
            triggered = extract_features(encoder, self.test.images, self.runtime, transform=self.trigger)
            triggered_pred = probe.predict(triggered)
            out.update(attack_success(triggered_pred, labels, self.target))
            out["stealth"] = stealth_figures(clean, triggered)
            out["triggered_pred"] = triggered_pred[self.gallery_index()]
        return out

    def gallery_index(self) -> torch.Tensor:
        """The first `GALLERY_SIZE` test images outside the target class (those ASR counts)."""
        return (self.test.labels != self.target).nonzero().flatten()[:GALLERY_SIZE]

    def save_gallery(self, path) -> None:
        """The gallery's triggered test images as uint8 [N, 3, H, W] in an .npz (plain arrays, no pickle)."""
        x = self.trigger(to_float(self.test.images[self.gallery_index()]))
        write_atomic_with(path, lambda f: np.savez_compressed(f, images=to_uint8(x).numpy()))

    def gallery(self, **scores: dict) -> dict:
        """Test indices, true classes and, per named score, the class each triggered image was given."""
        name = self.classes.__getitem__
        index = self.gallery_index()
        return {"index": index.tolist(), "label": [name(i) for i in self.test.labels[index].tolist()],
                **{k: [name(i) for i in score["triggered_pred"].tolist()] for k, score in scores.items()}}

    def estimate(self, encoder: torch.nn.Module) -> dict:
        """CA, ASR and ASR-all only (what a live curve plots)."""
        return figures(self.score(encoder))

    @classmethod
    def quick(cls, cfg: DownstreamConfig, runtime: Runtime, trigger: Trigger | None = None,
              target: str | int | None = None) -> "Downstream":
        """The same task on fewer images (`quick_sizes`), for estimates during training."""
        return cls(replace(cfg, **quick_sizes(cfg)), runtime, trigger, target)


def quick_sizes(cfg: DownstreamConfig) -> dict[str, int]:
    """`QUICK_PER_CLASS` probe images a class and `QUICK_TEST` test images, never more than the task's own."""
    wanted = {"n_downstream_train": QUICK_PER_CLASS * len(class_names(cfg.downstream)), "n_downstream_test": QUICK_TEST}
    return {k: min(v, getattr(cfg, k) or v) for k, v in wanted.items()}
