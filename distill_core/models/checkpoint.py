"""Encoder checkpoints: safetensors weights plus a JSON sidecar, and safe loading of foreign files.

Our format: `NAME.safetensors` holds the backbone's state dict (and the projection head under `head.`
when saved with one); `NAME.json` beside it says how to rebuild and feed it:

    {"format": "distill_core.encoder/1", "arch": "cifar_resnet18", "width": 0.25, "input_size": 32,
     "feature_dim": 128, "normalization": {"mean": [...], "std": [...]}, "head_dim": 128 | null,
     "provenance": {...}}

Foreign `.pt/.pth/.tar` files load only through `torch.load(weights_only=True)`: a pickle that would
run code or build arbitrary objects is refused, never executed. Their key layout is recognised by the
`LAYOUTS` registry; BadEncoder's published SimCLR encoders (`f.f.N...` backbone, `g.N...` head) map onto
ours by renaming prefixes, because our modules carry torchvision's names.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..runs.store import read_json, write_json
from .resnet import CIFAR10_MEAN, CIFAR10_STD, ProjectionHead, ResNetEncoder

FORMAT = "distill_core.encoder/1"
ARCH = "cifar_resnet18"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why in one sentence."""


def sidecar_path(path: Path | str) -> Path:
    return Path(path).with_suffix(".json")


def describe_encoder(encoder: ResNetEncoder, head: ProjectionHead | None = None, provenance: dict | None = None) -> dict:
    return {"format": FORMAT, "arch": ARCH, "width": encoder.width, "input_size": encoder.input_size,
            "feature_dim": encoder.feature_dim, "normalization": encoder.normalization,
            "head_dim": head.net[-1].out_features if head is not None else None,
            "provenance": provenance or {}}


def save_encoder(path: Path | str, encoder: ResNetEncoder, head: ProjectionHead | None = None,
                 provenance: dict | None = None) -> Path:
    """Write weights and sidecar atomically (temporary names, then rename); returns the weights path."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if head is not None:
        tensors.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()})
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)
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


def to_our_layout(sd: dict, source: str = "checkpoint") -> tuple[dict, str]:
    if sd and all(k.startswith("module.") for k in sd):  # a DataParallel wrapper around any layout
        sd = {k[len("module."):]: v for k, v in sd.items()}
    for name, (matches, convert) in LAYOUTS.items():
        if matches(set(sd)):
            return convert(sd), name
    raise CheckpointError(f"{source} does not look like a CIFAR ResNet-18 encoder: none of its "
                          f"{len(sd)} tensor names match a known layout (first: {next(iter(sd), 'none')}).")


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
    width = sd["conv1.weight"].shape[0] / 64
    head = sd.get("head.net.3.weight")
    return {"format": FORMAT, "arch": ARCH, "width": width, "input_size": 32,
            "feature_dim": sd["layer4.1.conv2.weight"].shape[0] if "layer4.1.conv2.weight" in sd else None,
            "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)},
            "head_dim": head.shape[0] if head is not None else None,
            "provenance": {"imported_from": layout}}


def read_checkpoint(path: Path | str) -> tuple[dict, dict]:
    """(state dict in our layout, sidecar) from a `.safetensors` (with sidecar) or a foreign torch file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}.")
    if path.suffix == ".safetensors":
        try:
            sd = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path.name} is not a readable safetensors file ({e}).") from e
        sd, layout = to_our_layout(sd, path.name)
        side = sidecar_path(path)
        meta = read_json(side) if side.is_file() else _infer_sidecar(sd, layout)
        return sd, meta
    sd, layout = to_our_layout(_read_foreign(path), path.name)
    return sd, _infer_sidecar(sd, layout)


def load_encoder(path: Path | str, with_head: bool = False):
    """Rebuild the encoder (and head, if saved and asked for) on the CPU; returns (encoder, head, sidecar)."""
    sd, meta = read_checkpoint(path)
    name = Path(path).name
    if meta.get("arch", ARCH) != ARCH:
        raise CheckpointError(f"{name} is a '{meta.get('arch')}' encoder; the lab builds {ARCH} only.")
    norm = meta.get("normalization") or {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}
    encoder = ResNetEncoder(width=meta["width"], input_size=meta.get("input_size", 32),
                            mean=tuple(norm["mean"]), std=tuple(norm["std"]))
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
        raise CheckpointError(f"{name} does not match the architecture its sidecar describes: {what}.")
    for k, v in sd.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(f"{name}: tensor '{k}' has shape {tuple(v.shape)}, "
                                  f"the architecture needs {tuple(expected[k].shape)}.")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{name}: tensor '{k}' contains NaN or infinite values.")
    module.load_state_dict(sd)

