"""The training film: attribution maps (Grad-CAM, or Integrated Gradients after a stride-2 stem) of a few fixed triggered test images, recorded at each evaluation of a
distillation, so a class can watch the student's attention leave the trigger epoch by epoch.

Each frame explains the student's own downstream prediction then (the quick probe fitted for that
evaluation), so the captions can say what it answered. The first frame, epoch -1, is the suspicious
encoder itself: with a fresh (scratch or warm-up) student the attention never sat on the trigger, and that
frame shows the class what the defence started from."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.augment import to_uint8
from ..files import write_atomic_with
from .attribution import ProbeLogits, attribute

FILM_IMAGES = 6


class Film:
    """Frames of `method`'s map (Grad-CAM: of `stage`) of the student's downstream prediction on K fixed
    triggered images."""

    def __init__(self, images: torch.Tensor, classes: list[str], method: str = "gradcam", stage: str = "layer4"):
        self.images, self.classes, self.method, self.stage = images, classes, method, stage
        self.epochs: list[int] = []
        self.frames: list[torch.Tensor] = []
        self.predicted: list[torch.Tensor] = []

    def record(self, epoch: int, encoder: torch.nn.Module, probe: torch.nn.Module) -> None:
        """Explain the probe's predicted class for each image; the encoder's train/eval mode is kept."""
        was_training = encoder.training
        try:
            model = ProbeLogits(encoder, probe)
            with torch.no_grad():
                predicted = model(self.images).argmax(1)
            self.frames.append(attribute(self.method, model, self.images, predicted, self.stage).half().cpu())
            self.predicted.append(predicted.cpu())
        finally:
            encoder.train(was_training)
        self.epochs.append(epoch)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs, "frames": torch.stack(self.frames), "predicted": torch.stack(self.predicted)}

    def load_state_dict(self, state: dict) -> None:
        self.epochs, self.frames, self.predicted = list(state["epochs"]), list(state["frames"]), list(state["predicted"])

    def save_npz(self, path: Path | str) -> None:
        """Atomically, so a page playing the film during training never reads half a file."""
        arrays = dict(epochs=np.array(self.epochs), maps=torch.stack(self.frames).float().numpy(),
                      predicted=torch.stack(self.predicted).numpy(), classes=np.array(self.classes),
                      images=to_uint8(self.images.cpu()).numpy(), method=np.array(self.method),
                      stage=np.array(self.stage))
        write_atomic_with(Path(path), lambda f: np.savez_compressed(f, **arrays))


def load_film(path: Path | str) -> dict | None:
    """{"epochs" [E], "maps" [E, K, H, W], "predicted" [E][K] class names, "images" uint8 [K, 3, H, W],
    "method", "stage"}, or None if the run has no film."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        classes = f["classes"].tolist()
        return {"epochs": f["epochs"].tolist(), "maps": torch.from_numpy(f["maps"]),
                "predicted": [[classes[i] for i in row] for row in f["predicted"].tolist()],
                "images": torch.from_numpy(f["images"]), "stage": str(f["stage"]),
                "method": str(f["method"]) if "method" in f else "gradcam"}  # films before 2026-12-06: Grad-CAM

