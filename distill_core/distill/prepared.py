"""Prepared teachers and students, kept and found again by everything that determines them.

The fine-tuned and pruned teachers and the warm-up student are each a SimCLR run on the defender's clean
subset from a known starting point. Two distillations that would train the very same one (the same starting
weights, clean images, seed, epochs and optimiser settings, on the same kind of device and precision) can
share it: the first keeps it in the `reuse` folder under a key hashed from all of that, later ones load it.
A sweep shares its teachers and students across losses this way; a class trying several losses in the app
trains each teacher once. Files are safetensors, written atomically; a concurrent writer of the same key
only repeats the work.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from ..files import write_atomic


def _digest(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(-1).view(torch.uint8).numpy().tobytes())


def prepared_key(modules: dict[str, nn.Module], images: torch.Tensor, settings: dict) -> str:
    """A short hash of the starting weights (every parameter and buffer), the images and the settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, module in modules.items():
        for key, value in sorted(module.state_dict().items()):
            h.update(f"{name}.{key}".encode())
            _digest(h, value)
    _digest(h, images)
    return h.hexdigest()[:16]


def save_prepared(path: Path, modules: dict[str, nn.Module], info: dict) -> None:
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous()
               for name, module in modules.items() for k, v in module.state_dict().items()}
    write_atomic(path, save(tensors, metadata={k: str(v) for k, v in info.items()}))


def load_prepared(path: Path, modules: dict[str, nn.Module]) -> None:
    """Load a kept file into modules built exactly as before training (strict: every key must match)."""
    tensors = load_file(path)
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
