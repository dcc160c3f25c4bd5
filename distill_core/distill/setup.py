"""`Defence`: what teachers and students are built from — the suspicious encoder, the defender's clean
images, the runtime — and the SimCLR fine-tuning several of them need (fine-tuned and pruned teachers,
the warm-up student). The fine-tuned teacher is made once per run and shared (the ensemble uses it too);
with `reuse` set, every such SimCLR run is kept and shared across runs too (see `prepared.py`).
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..config import check
from ..data.augment import SimCLRAugment
from ..data.datasets import load_dataset
from ..device import Runtime
from ..models.checkpoint import load_encoder, read_sidecar, sidecar_path
from ..models.resnet import ProjectionHead
from ..events import CancelToken, OnEvent
from ..files import read_json
from ..ssl.simclr import SimCLRTrainer, train_simclr
from .config import DistillConfig, phase_lr
from .prepared import load_prepared, prepared_key, save_prepared


@dataclass
class Suspect:
    """What the attack left beside the suspicious encoder: its trigger, target and scores, when known."""
    weights: Path
    trigger: str = ""
    target: str = ""
    downstream: str = ""
    attack: dict | None = None  # the attack run's summary

    def scored_on(self, downstream: str) -> bool:
        """Whether the attack was scored on this downstream task, so its figures and target carry over."""
        return self.downstream == downstream


def read_suspect(encoder: str) -> Suspect:
    path = Path(encoder).expanduser()
    weights = path / "encoder.safetensors" if path.is_dir() else path
    suspect = Suspect(weights)
    if sidecar_path(weights).is_file():
        prov = read_sidecar(weights).get("provenance") or {}
        suspect.target, suspect.downstream = prov.get("target") or "", prov.get("downstream") or ""
        suspect.trigger = prov.get("trigger") or ""
    if (weights.parent / "trigger.npz").is_file():
        suspect.trigger = str(weights.parent / "trigger.npz")
    if (weights.parent / "summary.json").is_file():
        suspect.attack = read_json(weights.parent / "summary.json")
    return suspect


def clean_subset(cfg: DistillConfig):
    """The defender's data: a seeded draw from the pre-training train split (never a test split), drawn
    with a different seed from the attacker's shadow set."""
    full = load_dataset(cfg.data, "train", root=cfg.data_root, download=cfg.download, size=cfg.image_size,
                        seed=cfg.data_seed)
    n = cfg.n_clean or round(cfg.clean_fraction * len(full))
    check(n >= cfg.batch_size, "batch_size", f"{cfg.batch_size} is more than the {n} clean images; "
                                              f"lower it or raise clean_fraction / n_clean")
    return full.sample(n, cfg.data_seed + 1)


@dataclass
class Defence:
    cfg: DistillConfig
    rt: Runtime
    suspicious: nn.Module                 # never trained in place: teachers and students copy it
    suspicious_head: nn.Module | None     # the projection head saved with it, if any
    clean: torch.Tensor                   # the defender's images, uint8 [N, 3, H, W], on the device
    labels: torch.Tensor                  # their classes (fine-pruning's clean accuracy)
    emit: OnEvent
    cancel: CancelToken
    _finetuned: nn.Module | None = field(default=None, repr=False)
    kept: list[Path] = field(default_factory=list)  # the kept SimCLR runs this defence trained or reused
    records: dict = field(default_factory=dict)     # what building a teacher or student measured (fine-pruning)

    @property
    def head_dim(self) -> int:
        return self.suspicious_head.net[-1].out_features if self.suspicious_head is not None else 128

    def copy_suspicious(self) -> nn.Module:
        """A trainable copy (the suspicious encoder itself is frozen)."""
        return copy.deepcopy(self.suspicious).requires_grad_(True)

    def generator(self, phase: str) -> torch.Generator:
        """A generator per phase, so (say) the warm-up student is the same whichever teacher is chosen."""
        return torch.Generator(device=self.rt.device).manual_seed(self.cfg.seed * 1000 + zlib.crc32(phase.encode()))

    def augment(self) -> SimCLRAugment:
        return SimCLRAugment(size=self.suspicious.input_size, scale=(self.cfg.crop_scale, 1.0))

    def simclr(self, encoder: nn.Module, head: nn.Module | None, epochs: int, phase: str):
        """SimCLR on the clean subset; returns (encoder, head), the head a trained copy (fresh if None).
        With `reuse` set, the result is loaded when the very same run was kept before, else kept."""
        head = copy.deepcopy(head) if head is not None else ProjectionHead(encoder.feature_dim, self.head_dim)
        encoder, head = self.rt.module(encoder), self.rt.module(head)
        if not epochs:
            return encoder, head
        modules = {"encoder": encoder, "head": head}
        kept = self.kept_path(phase, modules, epochs)
        if kept is not None:
            self.kept.append(kept)
        if kept is not None and kept.is_file():
            load_prepared(kept, modules)
            self.emit({"kind": "log", "message": f"{phase}: reused {kept.name} (the same SimCLR run, kept before)"})
            return encoder, head
        cfg = self.cfg
        trainer = SimCLRTrainer(encoder, head, self.rt, lr=self.phase_lr(phase), weight_decay=cfg.weight_decay,
                                temperature=cfg.temperature, augment=self.augment(), gen=self.generator(phase))
        train_simclr(trainer, self.clean, epochs=epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                     cancel=self.cancel, emit=self.emit, phase=phase, log_every=cfg.log_every)
        if kept is not None:
            save_prepared(kept, modules, {"phase": phase, "epochs": epochs, "seed": cfg.seed})
        return encoder, head

    def phase_lr(self, phase: str) -> float:
        return phase_lr(self.cfg, phase)

    def kept_path(self, phase: str, modules: dict, epochs: int) -> Path | None:
        """Where this SimCLR run is kept under `reuse` (None: reuse is off)."""
        if not self.cfg.reuse:
            return None
        cfg = self.cfg
        settings = {"phase": phase, "epochs": epochs, "seed": cfg.seed, "lr": self.phase_lr(phase),
                    "weight_decay": cfg.weight_decay, "temperature": cfg.temperature, "crop_scale": cfg.crop_scale,
                    "batch_size": cfg.batch_size, "device": self.rt.device.type, "precision": self.rt.precision}
        return Path(cfg.reuse).expanduser() / f"{phase}-{prepared_key(modules, self.clean, settings)}.safetensors"

    def finetuned(self) -> nn.Module:
        if self._finetuned is None:
            self._finetuned, _ = self.simclr(self.copy_suspicious(), self.suspicious_head,
                                             self.cfg.teacher_epochs, "teacher")
        return self._finetuned


def open_defence(cfg: DistillConfig, run, cancel: CancelToken):
    """(cfg with the encoder's input size, suspect, Defence, clean subset) for a distillation's settings."""
    rt = Runtime.create(cfg.device, cfg.precision, compile=cfg.compile)
    suspect = read_suspect(cfg.encoder)
    suspicious, head, meta = load_encoder(suspect.weights, with_head=True)
    cfg = replace(cfg, image_size=meta.get("input_size", cfg.image_size))
    clean = clean_subset(cfg)
    suspicious = rt.module(suspicious).eval().requires_grad_(False)
    defence = Defence(cfg, rt, suspicious, head, clean.images.to(rt.device), clean.labels.to(rt.device), run, cancel)
    return cfg, suspect, defence, clean

