"""Config dataclasses shared by every task, and how presets and overrides combine.

Defaults are the reference implementations' values (BadEncoder / the authors' code; see each field's
help); a preset (`presets.py`) overrides some of them; explicit overrides (CLI flags, app widgets) win
over both. Each field's `help` is the CLI's help text, so flags and docs never drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


def opt(default, help: str, **kw):
    """A config field with its help text (used for CLI flags and the app's tooltips)."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class RuntimeConfig:
    device: str = opt("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    precision: str = opt("auto", "auto (bf16 where the hardware has it, else fp32), fp32, bf16 or fp16")
    compile: bool = opt(False, "torch.compile the training steps (pre-training, attack, distillation); measured on "
                               "a 2-core CPU: ~40 s to compile for a step at most 5% faster, so worth it on long GPU runs only")
    seed: int = opt(0, "random seed for weights, batches and augmentations")


@dataclass
class DataConfig:
    data_root: str = opt("data", "folder holding torchvision datasets (cifar10, stl10, gtsrb, svhn)")
    download: bool = opt(False, "download torchvision datasets that are missing (needs internet)")
    image_size: int = opt(32, "encoder input size in pixels; images are resized to it")
    data_seed: int = opt(0, "seed of the embedded datasets' drawing, of subsampling and of the probe")


@dataclass
class DownstreamConfig(DataConfig):
    downstream: str = opt("gtsrb", "downstream dataset for the probe (embedded: signs)")
    n_downstream_train: int = opt(0, "downstream training images for the probe (0 = all / default size)")
    n_downstream_test: int = opt(0, "downstream test images (0 = all / default size)")
    probe: str = opt("mlp", "downstream classifier: linear (logistic regression) or mlp (BadEncoder's head)")
    probe_epochs: int = opt(500, "epochs of the mlp probe (BadEncoder: 500)")


def with_overrides(cfg, overrides: dict | None):
    """A copy of `cfg` with the known keys of `overrides` applied (unknown keys are ignored)."""
    names = {f.name for f in fields(cfg)}
    return replace(cfg, **{k: v for k, v in (overrides or {}).items() if k in names and v is not None})


def check(condition: bool, name: str, message: str) -> None:
    """Reject a bad config value before any work starts, naming the field."""
    if not condition:
        raise ValueError(f"{name}: {message}")


def validate_common(cfg: DownstreamConfig) -> None:
    check(cfg.image_size >= 8, "image_size", f"must be at least 8 pixels, not {cfg.image_size}")
    for name in ("n_downstream_train", "n_downstream_test"):
        check(getattr(cfg, name) >= 0, name, "cannot be negative")
    check(cfg.probe in ("linear", "mlp"), "probe", f"must be linear or mlp, not '{cfg.probe}'")
