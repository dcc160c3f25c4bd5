"""Config dataclasses shared by every task, and how presets and overrides combine.

Defaults are the reference implementations' values (BadEncoder / the authors' code; see each field's
help); a preset (`presets.py`) overrides some of them; explicit overrides (CLI flags, app widgets) win
over both. Each field's `help` is the CLI's help text, so flags and docs never drift apart.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace


def opt(default, help: str, **kw):
    """A config field with its help text (the CLI's flags, the app's tooltips) and, for a knob the app shows, its
    `label` and range (`low`, `high`: checked by `check_ranges`, the app's input bounds)."""
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
    probe_standardize: bool = opt(True, "standardise the L2-normalised features per dimension before the probe "
                                        "(the lab's; BadEncoder's probe does not: --no-probe-standardize)")


def with_overrides(cfg, overrides: dict | None):
    """A copy of `cfg` with the known keys of `overrides` applied (unknown keys are ignored).

    A whole float for an int field (5.0 from JSON or a widget) becomes an int, so it passes `validate`.
    """
    types = {f.name: f.type for f in fields(cfg)}
    def fit(name, v):
        return int(v) if types[name] == "int" and isinstance(v, float) and v.is_integer() else v
    return replace(cfg, **{k: fit(k, v) for k, v in (overrides or {}).items() if k in types and v is not None})


def check(condition: bool, name: str, message: str) -> None:
    """Reject a bad config value before any work starts, naming the field."""
    if not condition:
        raise ValueError(f"{name}: {message}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# a field's declared type -> (does a value have it?, how to say what it must be); NaN and infinities are no
# numbers a setting can mean, and they pass comparisons such as `epochs >= 1` (inf) or slip past them (NaN)
TYPES = {
    "int": (lambda v: _number(v) and not isinstance(v, float), "a whole number"),
    "float": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
    "str": (lambda v: isinstance(v, str), "text"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}
MAX_SEED = 2**32 - 1  # numpy's and most tools' seed range; torch takes it too


def check_types(cfg) -> None:
    """Every field holds a value of its declared type, so the range checks that follow compare numbers."""
    for f in fields(cfg):
        has, what = TYPES[f.type]
        value = getattr(cfg, f.name)
        check(has(value), f.name, f"must be {what}, not {repr(value)[:60]}")


def check_ranges(cfg) -> None:
    """Every field that declares a range (`opt(..., low=, high=)`) holds a value inside it."""
    for f in (f for f in fields(cfg) if "low" in f.metadata or "high" in f.metadata):
        low, high, value = f.metadata.get("low", -math.inf), f.metadata.get("high", math.inf), getattr(cfg, f.name)
        if high < math.inf:
            check(low <= value <= high, f.name, f"must be in [{low:g}, {high:g}], not {value}")
        else:
            check(value >= low, f.name, f"must be at least {low:g}, not {value}" if low else
                  f"cannot be negative, not {value}")


def check_dataset(name: str, field: str) -> list[str]:
    """The classes of dataset `name` (known without loading it); ValueError naming `field` if there is none."""
    from .data.datasets import DataError, class_names
    try:
        return class_names(name)
    except DataError as e:
        raise ValueError(f"{field}: {e}") from None


def check_target(target: str, downstream: str, field: str = "target") -> None:
    """A named target class exists among the downstream's classes (checked before any data is loaded)."""
    from .data.imageset import class_index
    if target:
        try:
            class_index(check_dataset(downstream, "downstream"), target, downstream)
        except ValueError as e:
            raise ValueError(f"{field}: {e}") from None


def check_trigger(spec: str, image_size: int, field: str = "trigger") -> None:
    """A trigger spec builds a trigger that fits the images (cheap: no data is loaded)."""
    from .data.triggers import make_trigger
    try:
        make_trigger(spec, image_size)
    except ValueError as e:  # DataError, or a trigger file that is not one
        raise ValueError(f"{field}: {e}") from None


DEVICES = ("auto", "cpu", "cuda", "mps")  # or cuda:N; whether it is there is found when the task starts
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def validate_common(cfg) -> None:
    """The checks of the settings every task shares (`RuntimeConfig` and `DownstreamConfig`), types first, then
    every declared range."""
    check_types(cfg)
    check_ranges(cfg)
    check(cfg.device in DEVICES or re.fullmatch(r"cuda:[0-9]{1,3}", cfg.device) is not None, "device",
          f"must be one of {', '.join(DEVICES)} or cuda:N, not {cfg.device!r}")
    check(cfg.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}, not {cfg.precision!r}")
    for name in ("seed", "data_seed"):
        check(0 <= getattr(cfg, name) <= MAX_SEED, name, f"must be from 0 to {MAX_SEED}, not {getattr(cfg, name)}")
    check(8 <= cfg.image_size <= 512, "image_size", f"must be from 8 to 512 pixels, not {cfg.image_size}")
    for name in ("n_downstream_train", "n_downstream_test"):
        check(getattr(cfg, name) >= 0, name, "cannot be negative")
    check(cfg.probe in ("linear", "mlp"), "probe", f"must be linear or mlp, not {cfg.probe!r}")
    check(cfg.probe_epochs >= 1, "probe_epochs", f"must be at least 1, not {cfg.probe_epochs}")
    check_dataset(cfg.downstream, "downstream")


def read_settings_file(path: str, config_cls) -> dict:
    """Overrides from a YAML (or JSON) file of `field: value` (a sweep's grid file, say). A list for a text
    field becomes comma-separated text and a mapping becomes JSON, so a grid reads naturally:
    `teachers: [finetuned, pruned]`, `settings: {distill: {lr: 0.001}}`. Unknown fields are refused."""
    import json
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ValueError(f"cannot read the settings file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold `field: value` lines, not a {type(data).__name__}")
    types = {f.name: f.type for f in fields(config_cls)}
    unknown = sorted(set(map(str, data)) - set(types))
    if unknown:
        raise ValueError(f"{path}: no setting named {', '.join(map(repr, unknown))}")
    def text(v):
        if isinstance(v, list):
            return ",".join(map(str, v))
        return json.dumps(v) if isinstance(v, dict) else v
    return {k: text(v) if types[k] == "str" else v for k, v in data.items()}
