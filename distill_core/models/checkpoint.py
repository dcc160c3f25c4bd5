"""Encoder checkpoints: safetensors weights plus a JSON sidecar, and safe loading of foreign files.

Our format: `NAME.safetensors` holds the backbone's state dict (and the projection head under `head.`
when saved with one); `NAME.json` beside it says how to rebuild and feed it:

    {"format": "distill_core.encoder/1", "arch": "cifar_resnet18", "width": 0.25, "input_size": 32,
     "stem_stride": 1 | 2 (absent: 1), "feature_dim": 128, "normalization": {"mean": [...], "std": [...]}, "head_dim": 128 | null,
     "provenance": {...}}

Foreign `.pt/.pth/.tar` files load only through `torch.load(weights_only=True)`: a pickle that would
run code or build arbitrary objects is refused, never executed. Their key layout is recognised by the
`LAYOUTS` registry; BadEncoder's published SimCLR encoders (`f.f.N...` backbone, `g.N...` head) map onto
ours by renaming prefixes, because our modules carry torchvision's names.

Nothing in a checkpoint is trusted: the sidecar's every field is checked (`SIDECAR`) and must agree with the
tensors before any module is built from it, other architectures are named (`FOREIGN`), and NaN or infinite
weights are refused, each with one sentence naming the file and the problem.
"""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..files import write_atomic, write_json
from .resnet import CIFAR10_MEAN, CIFAR10_STD, MAX_WIDTH, STEM_STRIDES, ProjectionHead, ResNetEncoder, stage_channels

FORMAT = "distill_core.encoder/1"
ARCH = "cifar_resnet18"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why in one sentence."""


def sidecar_path(path: Path | str) -> Path:
    return Path(path).with_suffix(".json")


def describe_encoder(encoder: ResNetEncoder, head: ProjectionHead | None = None, provenance: dict | None = None) -> dict:
    return {"format": FORMAT, "arch": ARCH, "width": encoder.width, "input_size": encoder.input_size,
            "stem_stride": encoder.stem_stride, "feature_dim": encoder.feature_dim, "normalization": encoder.normalization,
            "head_dim": head.net[-1].out_features if head is not None else None,
            "provenance": provenance or {}}


def save_encoder(path: Path | str, encoder: ResNetEncoder, head: ProjectionHead | None = None,
                 provenance: dict | None = None) -> Path:
    """Write weights and sidecar, each atomically; returns the weights path."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if head is not None:
        tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()})
    write_atomic(path, save(tensors, metadata={"format": FORMAT}))
    write_json(sidecar_path(path), describe_encoder(encoder, head, provenance))
    return path


# --- foreign layouts ------------------------------------------------------------------------------
def _rename(prefixes: dict[str, str]) -> Callable[[dict], dict]:
    def convert(sd: dict) -> dict:
        out = {}
        for k, v in sd.items():
            for old, new in prefixes.items():
                if k.startswith(old):
                    out[new + k[len(old):]] = v
                    break
        return out
    return convert


# name -> (recognises the key set, converts to our keys with the head under "head.")
LAYOUTS: dict[str, tuple[Callable[[set], bool], Callable[[dict], dict]]] = {
    "distill_core": (lambda keys: "conv1.weight" in keys, lambda sd: sd),
    # BadEncoder models/simclr_model.py: SimCLR.f.f = [conv1, bn1, relu, layer1..4, avgpool], g = head
    "badencoder": (lambda keys: "f.f.0.weight" in keys,
                   _rename({"f.f.0.": "conv1.", "f.f.1.": "bn1.", "f.f.3.": "layer1.", "f.f.4.": "layer2.",
                            "f.f.5.": "layer3.", "f.f.6.": "layer4.", "g.": "head.net."})),
    "badencoder-backbone": (lambda keys: "f.0.weight" in keys,
                            _rename({"f.0.": "conv1.", "f.1.": "bn1.", "f.3.": "layer1.", "f.4.": "layer2.",
                                     "f.5.": "layer3.", "f.6.": "layer4."})),
}


def _kernel(v: torch.Tensor) -> tuple:
    return tuple(v.shape[2:]) if v.ndim == 4 else ()


# other encoders' state dicts, named so a refusal says what the file holds (a CIFAR ResNet-18 has only
# 3x3 and 1x1 convolutions in basic blocks of two)
FOREIGN: dict[str, Callable[[dict], bool]] = {
    "a Vision Transformer": lambda sd: any(k.split(".")[-1] in ("cls_token", "class_token", "pos_embed")
                                           or ".attn." in k or "self_attention" in k for k in sd),
    "a ResNet with bottleneck blocks (ResNet-50 or deeper)": lambda sd: any(k.endswith("conv3.weight") for k in sd),
    "an ImageNet-style network (7x7 first convolution)": lambda sd: any(_kernel(v) == (7, 7) for v in sd.values()),
}


def to_our_layout(sd: dict, source: str = "checkpoint") -> tuple[dict, str]:
    if sd and all(k.startswith("module.") for k in sd):  # a DataParallel wrapper around any layout
        sd = {k[len("module."):]: v for k, v in sd.items()}
    for family, matches in FOREIGN.items():
        if matches(sd):
            raise CheckpointError(f"{source} holds {family}; the lab builds CIFAR ResNet-18 encoders only.")
    for name, (matches, convert) in LAYOUTS.items():
        if matches(set(sd)):
            return convert(sd), name
    raise CheckpointError(f"{source} does not look like a CIFAR ResNet-18 encoder: none of its "
                          f"{len(sd)} tensor names match a known layout (first: {next(iter(sd), 'none')}).")


def _read_safetensors(path: Path) -> dict:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({e}).") from e


def _read_foreign(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):  # not a pickle we can read at all
            raise CheckpointError(f"{path.name} could not be read as a PyTorch checkpoint (corrupt or another format).") from e
        raise CheckpointError(f"{path.name} was refused: it is a pickle that would build objects other than "
                              f"tensors (possibly code), and the lab never executes such files.") from e
    except Exception as e:  # truncated zip, not a torch file at all, ...
        raise CheckpointError(f"{path.name} could not be read as a PyTorch checkpoint ({type(e).__name__}).") from e
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "encoder"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} holds no state dict of tensors.")
    return obj


def _infer_sidecar(sd: dict, layout: str) -> dict:
    """The sidecar a file without one would have: the width read off the stem, our defaults for the rest."""
    head = sd.get("head.net.3.weight")
    return {"format": FORMAT, "arch": ARCH, "width": sd["conv1.weight"].shape[0] / 64, "input_size": 32,
            "feature_dim": sd["layer4.1.conv2.weight"].shape[0] if "layer4.1.conv2.weight" in sd else None,
            "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)},
            "head_dim": head.shape[0] if head is not None and head.ndim == 2 else None,
            "provenance": {"imported_from": layout}}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # 128.0 would reach nn.Linear and fail there


def _triple(v, positive: bool = False) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_number(x) and (x > 0 or not positive) for x in v)


# sidecar key -> (required, valid?, what a valid value is); checked before any module is built from them
SIDECAR: dict[str, tuple[bool, Callable[[object], bool], str]] = {
    "arch": (False, lambda v: v == ARCH, f"'{ARCH}', the only architecture the lab builds"),
    "width": (True, lambda v: _number(v) and 0 < v <= MAX_WIDTH, f"a width multiplier in (0, {MAX_WIDTH:g}]"),
    "input_size": (False, lambda v: _whole(v) and 8 <= v <= 512, "a whole number of pixels from 8 to 512"),
    "stem_stride": (False, lambda v: _whole(v) and v in STEM_STRIDES, f"one of {', '.join(map(str, STEM_STRIDES))}"),
    "normalization": (False, lambda v: v is None or (isinstance(v, dict) and _triple(v.get("mean"))
                                                     and _triple(v.get("std"), positive=True)),
                      "null or {\"mean\": [3 numbers], \"std\": [3 positive numbers]}"),
    "head_dim": (False, lambda v: v is None or (_whole(v) and v >= 1), "null or a whole number of at least 1"),
}


def _check_fields(meta, source: str) -> None:
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source} is not a JSON object of encoder facts.")
    for key, (required, valid, what) in SIDECAR.items():
        if key not in meta:
            if required:
                raise CheckpointError(f"{source} lacks '{key}' ({what}).")
        elif not valid(meta[key]):
            raise CheckpointError(f"{source} says {key} = {json.dumps(meta[key])[:60]}; it must be {what}.")


def read_sidecar(weights: Path | str) -> dict:
    """The checked sidecar of `weights` (CheckpointError if it is missing, not JSON or its facts are wrong)."""
    weights = Path(weights)
    side = sidecar_path(weights)
    source = f"{side.name}, the sidecar of {weights.name},"
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckpointError(f"{source} could not be read ({e.strerror or e.__class__.__name__}).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" (line {e.lineno}: {e.msg})" if isinstance(e, json.JSONDecodeError) else ""
        raise CheckpointError(f"{source} is not valid JSON{where}.") from None
    _check_fields(meta, source)
    return meta


def _check_agrees(meta: dict, sd: dict, source: str) -> None:
    """The sidecar's width and head size must be the tensors', so a lying sidecar never builds a module."""
    want, have = stage_channels(meta["width"])[0], sd["conv1.weight"].shape[0]
    if have != want:
        raise CheckpointError(f"{source} says width {meta['width']:g} ({want} channels in the first layer), but "
                              f"the weights have {have}: it does not describe these weights.")
    head = sd.get("head.net.3.weight")
    if meta.get("head_dim") and head is not None and (head.ndim != 2 or head.shape[0] != meta["head_dim"]):
        raise CheckpointError(f"{source} says head_dim {meta['head_dim']}, but the head's last layer has shape "
                              f"{tuple(head.shape)}: it does not describe these weights.")


def read_checkpoint(path: Path | str) -> tuple[dict, dict]:
    """(state dict in our layout, sidecar) from a `.safetensors` (with sidecar) or a foreign torch file;
    the sidecar is checked and agrees with the tensors (CheckpointError with the reason otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}.")
    ours = path.suffix == ".safetensors"
    sd, layout = to_our_layout(_read_safetensors(path) if ours else _read_foreign(path), path.name)
    stem = sd["conv1.weight"]
    if stem.ndim != 4:
        raise CheckpointError(f"{path.name}: tensor 'conv1.weight' has shape {tuple(stem.shape)}, not a convolution's.")
    if ours and sidecar_path(path).is_file():
        meta, source = read_sidecar(path), f"{sidecar_path(path).name}, the sidecar of {path.name},"
    else:
        meta, source = _infer_sidecar(sd, layout), f"{path.name}, read off its tensors,"
        _check_fields(meta, source)
    _check_agrees(meta, sd, source)
    return sd, meta


def encoder_shape(meta: dict) -> dict:
    """The `ResNetEncoder` arguments a sidecar describes (older sidecars: CIFAR defaults)."""
    norm = meta.get("normalization") or {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}
    return {"width": meta["width"], "input_size": meta.get("input_size", 32), "stem_stride": meta.get("stem_stride", 1),
            "mean": tuple(norm["mean"]), "std": tuple(norm["std"])}


def load_encoder(path: Path | str, with_head: bool = False):
    """Rebuild the encoder (and head, if saved and asked for) on the CPU; returns (encoder, head, sidecar)."""
    sd, meta = read_checkpoint(path)
    name = Path(path).name
    encoder = ResNetEncoder(**encoder_shape(meta))
    backbone = {k: v for k, v in sd.items() if not k.startswith("head.")}
    _load_checked(encoder, backbone, name)
    head = None
    if with_head and meta.get("head_dim"):
        head = ProjectionHead(encoder.feature_dim, meta["head_dim"])
        _load_checked(head, {k[5:]: v for k, v in sd.items() if k.startswith("head.")}, name)
    return encoder, head, meta


def _load_checked(module: torch.nn.Module, sd: dict, name: str) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{name} is not a CIFAR ResNet-18 encoder as the lab builds it: tensor names "
                              f"differ ({what}).")
    for k, v in sd.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{name}: tensor '{k}' has shape {tuple(v.shape)}, "
                                  f"the architecture needs {tuple(expected[k].shape)}.")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{name}: tensor '{k}' contains NaN or infinite values.")
    module.load_state_dict(sd)

