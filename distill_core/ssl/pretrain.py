"""Pre-train a clean encoder with SimCLR, then score it and a random-init twin on the downstream task.

Defaults are BadEncoder's CIFAR-10 pre-training (`pretraining_encoder.py`): ResNet-18, Adam lr 1e-3,
weight decay 1e-6, batch 256, temperature 0.5, 1000 epochs, RandomResizedCrop scale 0.08-1. The random
init twin (same architecture and seed, no training) is what shows whether pre-training mattered.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from ..config import DownstreamConfig, RuntimeConfig, check, check_dataset, opt, validate_common
from ..data.augment import SimCLRAugment
from ..data.datasets import load_dataset, report_skipped
from ..device import Runtime
from ..evaluate.downstream import Downstream
from ..evaluate.features import extract_features
from ..evaluate.metrics import accuracy, knn_predict
from ..models.checkpoint import save_encoder
from ..models.resnet import MAX_WIDTH, STEM_STRIDES, ProjectionHead, cifar_resnet18
from ..events import CancelToken
from ..runs.registry import Task
from ..runs.store import Run
from ..training import planned, simclr_passes, train_epochs
from .simclr import SimCLRTrainer


@dataclass
class PretrainConfig(RuntimeConfig, DownstreamConfig):
    data: str = opt("cifar10", "pre-training dataset (embedded: shapes; or cifar10, stl10, gtsrb, svhn, folder:PATH)")
    n_train: int = opt(0, "pre-training images (0 = all / the embedded default)")
    width: float = opt(1.0, "encoder width multiplier (1.0 = ResNet-18's 64..512 channels)")
    stem_stride: int = opt(1, "stride of the encoder's first convolution (CIFAR ResNet-18: 1; 2 = stages at half "
                              "the image size, about 3.5x faster on a laptop CPU)")
    epochs: int = opt(1000, "pre-training epochs (BadEncoder: 1000 on CIFAR-10)")
    batch_size: int = opt(256, "images per step; each gives two views (BadEncoder: 256)")
    lr: float = opt(1e-3, "Adam learning rate (BadEncoder: 1e-3)")
    weight_decay: float = opt(1e-6, "Adam weight decay (BadEncoder: 1e-6)")
    temperature: float = opt(0.5, "InfoNCE temperature (BadEncoder: 0.5)")
    crop_scale: float = opt(0.08, "smallest RandomResizedCrop area fraction (torchvision/BadEncoder: 0.08)")
    head_dim: int = opt(128, "projection head output size (BadEncoder: 128)")
    knn_every: int = opt(0, "epochs between kNN-monitor evaluations (0 = only at the end)")
    save_every: int = opt(0, "epochs between checkpoints (0 = only at the end)")
    log_every: int = opt(10, "steps between step events (each reads the loss off the device)")


def validate(cfg: PretrainConfig) -> None:
    """Refuse a bad setting before any work, naming its field."""
    validate_common(cfg)
    check_dataset(cfg.data, "data")
    check(cfg.epochs >= 1, "epochs", f"must be at least 1, not {cfg.epochs}")
    check(cfg.batch_size >= 2, "batch_size", f"must be at least 2, not {cfg.batch_size}")
    check(0 < cfg.width <= MAX_WIDTH, "width", f"must be in (0, {MAX_WIDTH:g}], not {cfg.width}")
    check(cfg.stem_stride in STEM_STRIDES, "stem_stride", f"must be one of {STEM_STRIDES}, not {cfg.stem_stride}")
    check(0 < cfg.crop_scale <= 1, "crop_scale", f"must be in (0, 1], not {cfg.crop_scale}")
    check(cfg.lr > 0, "lr", f"must be positive, not {cfg.lr}")
    check(cfg.weight_decay >= 0, "weight_decay", "cannot be negative")
    check(cfg.temperature > 0, "temperature", f"must be positive, not {cfg.temperature}")
    check(cfg.head_dim >= 1, "head_dim", f"must be at least 1, not {cfg.head_dim}")
    for name in ("n_train", "knn_every", "save_every"):
        check(getattr(cfg, name) >= 0, name, "cannot be negative")
    check(cfg.log_every >= 1, "log_every", f"must be at least 1, not {cfg.log_every}")


def pretrain_plan(cfg: PretrainConfig) -> list[dict]:
    n = cfg.n_train or len(load_dataset(cfg.data, "train", root=cfg.data_root, download=cfg.download,
                                        size=cfg.image_size, seed=cfg.data_seed))
    return [planned("", cfg.epochs, n, cfg.batch_size, simclr_passes(cfg.batch_size))]


def pretrain(cfg: PretrainConfig, run: Run, cancel: CancelToken) -> dict:
    run({"kind": "plan", "parts": pretrain_plan(cfg)})
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rt = Runtime.create(cfg.device, cfg.precision, compile=cfg.compile)
    common = dict(root=cfg.data_root, download=cfg.download, size=cfg.image_size, seed=cfg.data_seed)
    train = load_dataset(cfg.data, "train", n=cfg.n_train or None, **common)
    monitor_test = load_dataset(cfg.data, "test", **common)
    downstream = Downstream(cfg, rt)
    report_skipped(run, train, monitor_test, downstream.train, downstream.test)
    check(len(train) >= cfg.batch_size, "batch_size",
          f"{cfg.batch_size} is more than the {len(train)} pre-training images")
    seconds = {"data": time.perf_counter() - t0}
    run({"kind": "log", "message": f"{len(train)} pre-training images of {cfg.data}; {rt.describe()['name']}, "
                                   f"{rt.precision}", "runtime": rt.describe()})

    encoder = rt.module(cifar_resnet18(cfg.width, input_size=cfg.image_size, stem_stride=cfg.stem_stride))
    head = rt.module(ProjectionHead(encoder.feature_dim, cfg.head_dim))
    t = time.perf_counter()
    random_init = downstream.score(encoder)  # the same weights, before any training
    seconds["evaluate"] = time.perf_counter() - t

    gen = torch.Generator(device=rt.device).manual_seed(cfg.seed)
    trainer = SimCLRTrainer(encoder, head, rt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            temperature=cfg.temperature, gen=gen,
                            augment=SimCLRAugment(size=cfg.image_size, scale=(cfg.crop_scale, 1.0)))
    steps_per_epoch = len(train) // cfg.batch_size
    total, step, knn = steps_per_epoch * cfg.epochs, 0, None
    images = train.images.pin_memory() if rt.device.type == "cuda" else train.images

    def save(**results):
        prov = {"task": "pretrain", "run": run.id, "command": run.record.get("command"), "config": asdict(cfg),
                "steps": step, "of_steps": total, "runtime": rt.describe(),
                "saved": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **results}
        save_encoder(run.file("encoder.safetensors"), encoder, head, prov)

    t = time.perf_counter()
    try:
        for epoch, step, event in train_epochs(lambda idx, _: {"loss": trainer.step(images[idx])}, n=len(train),
                                               batch_size=cfg.batch_size, seed=cfg.seed, epochs=cfg.epochs,
                                               cancel=cancel, emit=run, log_every=cfg.log_every):
            event["images_per_s"] = step * cfg.batch_size / (time.perf_counter() - t)
            if (cfg.knn_every and epoch % cfg.knn_every == 0) or epoch == cfg.epochs:
                knn = knn_accuracy(encoder, train, monitor_test, rt)
                event["knn"] = knn
            run(event)
            if cfg.save_every and epoch % cfg.save_every == 0:
                save()
    finally:
        seconds["train"] = time.perf_counter() - t
        save()  # the last weights survive a cancel or a crash
    t = time.perf_counter()
    simclr = downstream.score(encoder)
    seconds["evaluate"] += time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    figures = {"ca_simclr": simclr["ca"], "ca_random_init": random_init["ca"]}
    save(downstream={"dataset": cfg.downstream, "probe": cfg.probe, **figures}, seconds=seconds)
    return {
        "task": "pretrain", "data": cfg.data, "downstream": cfg.downstream, "probe": cfg.probe,
        **figures, "ca_gain": simclr["ca"] - random_init["ca"], "knn_monitor": knn,
        "per_class_simclr": simclr["per_class"], "encoder": str(run.file("encoder.safetensors")),
        "images_per_s": total * cfg.batch_size / max(seconds["train"], 1e-9), "steps": total,
        "runtime": rt.describe(), "seconds": seconds,
    }


def knn_accuracy(encoder, bank_set, test_set, rt: Runtime, bank_size: int = 5000, test_size: int = 1000) -> float:
    """Weighted kNN monitor on the pre-training data's own labels (a live signal only)."""
    bank = extract_features(encoder, bank_set.images[:bank_size], rt)
    test = extract_features(encoder, test_set.images[:test_size], rt)
    pred = knn_predict(test, bank, bank_set.labels[:bank_size].to(rt.device), len(bank_set.classes))
    return accuracy(pred, test_set.labels[:test_size])


PRETRAIN_TASK = Task("pretrain", PretrainConfig, pretrain, "Pre-train a clean encoder with SimCLR and probe it "
                     "downstream.", validate)
