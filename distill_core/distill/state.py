"""What an interrupted distillation carries on from: the loop's whole state at the end of an epoch.

`resume.pt` holds the student, its head and the stage losses' parameters, the optimiser, the augmentation
generator and the global RNG, the best-so-far, the curves, the film's frames, and where the run's events
stood. Restored on top of a setup rebuilt from the same seed, it makes the resumed run reach the result an
uninterrupted one reaches. Written atomically; read with `weights_only`, like any file the lab loads.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..files import write_atomic_with

STATE_FILE = "resume.pt"


def save_state(path: Path, state: dict) -> None:
    write_atomic_with(path, lambda f: torch.save(state, f))


def load_state(path: Path) -> dict | None:
    """The saved state, or None when the run stopped before its first checkpoint."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
