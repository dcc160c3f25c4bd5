"""A story's gallery: triggered test images and the class each encoder's downstream classifier gave them.

Attack and distillation runs save the images (`gallery.npz`, uint8) and the predictions (the summary's
`gallery`); a pipeline keeps its images in its attack stage's folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_gallery(run: dict) -> tuple[torch.Tensor, dict] | None:
    """(uint8 images [N, 3, H, W], {"label": [...], role: [...]}) of a finished run, or None if it has none."""
    summary = run.get("summary") or {}
    if "gallery" not in summary:
        return None
    path = Path(run["path"])
    folders = [path, *(path / stage for stage in summary.get("runs") or {})]  # a pipeline's stages are its folders
    for folder in folders:
        if (folder / "gallery.npz").is_file():
            with np.load(folder / "gallery.npz", allow_pickle=False) as f:
                return torch.from_numpy(f["images"]), summary["gallery"]
    return None
