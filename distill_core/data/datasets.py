"""Every dataset the lab can use, looked up by name, returned as an `ImageSet` at the encoder's size.

- embedded (offline, generated): `shapes` (pre-training), `signs` (downstream); see `synthetic.py`;
- torchvision: `cifar10`, `stl10`, `gtsrb`, `svhn`, read from `root`; downloaded only when the caller
  passes `download=True`;
- `folder:PATH`: any ImageFolder tree with `train/` and `test/` class folders.

Images of any size or mode are converted to RGB at `size` x `size` (bilinear, antialiased) once, when
loaded; loaded sets are cached in the process, so the app and repeated calls pay the cost once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import synthetic
from .imageset import ImageSet

SPLITS = ("train", "test")
EMBEDDED_SIZES = {"train": 5000, "test": 1000}


class DataError(ValueError):
    """Data that cannot be loaded; the message says what to do in one sentence."""


@dataclass(frozen=True)
class Source:
    description: str
    load: Callable[..., ImageSet]  # (split, root, download, size) -> ImageSet
    target: str | None = None  # the attack's usual target class (BadEncoder's choice for real sets)


def _embedded(name: str):
    def load(split, root, download, size, n=None, seed=0):
        return synthetic.generate(name, n or EMBEDDED_SIZES[split], seed=seed, split=split, size=size)
    return load


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> uint8 [N, 3, size, size], antialiased; a no-op at the right size."""
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = []
    for chunk in images.split(1024):
        x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def pil_to_uint8(img: Image.Image, size: int) -> torch.Tensor:
    """Any PIL image (grayscale, palette, RGBA, 16-bit, any size) -> uint8 [3, size, size]."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high bit depth: rescale to 8 bits first
        a = np.asarray(img, dtype=np.float64)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-12) * 255
        img = Image.fromarray(a.astype(np.uint8))
    img = img.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=None)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def _torchvision(cls_name: str, split_arg: Callable[[str], dict], classes: Callable | None = None):
    def load(split, root, download, size, n=None, seed=0):
        import torchvision
        cls = getattr(torchvision.datasets, cls_name)
        try:
            ds = cls(root=str(root), download=download, **split_arg(split))
        except RuntimeError as e:
            hint = "allow downloading (--download; needs internet)" if not download else "check the folder"
            raise DataError(f"{cls_name} was not found under '{root}': {hint}, or set the data root "
                            f"(--data-root) to the folder that holds it.") from e
        except OSError as e:  # download attempted without a network
            raise DataError(f"{cls_name} could not be downloaded to '{root}' ({e.__class__.__name__}): "
                            f"check the internet connection or copy the dataset there by hand.") from e
        images, labels = _tensors(ds, size)
        names = classes(ds) if classes else list(getattr(ds, "classes", [])) or [str(i) for i in range(int(labels.max()) + 1)]
        return _subsample(ImageSet(images, labels, names, f"{cls_name.lower()}:{split}"), n, seed)
    return load


def _tensors(ds, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = getattr(ds, "data", None)
    if isinstance(data, np.ndarray) and data.ndim == 4:  # CIFAR (N,H,W,3), SVHN/STL10 (N,3,H,W)
        x = torch.from_numpy(data)
        x = x.permute(0, 3, 1, 2) if x.shape[-1] == 3 else x
        y = getattr(ds, "targets", None)
        y = getattr(ds, "labels", None) if y is None else y
        return resize_uint8(x, size), torch.as_tensor(np.asarray(y), dtype=torch.long)
    images, labels = [], []
    for img, label in ds:  # file-based sets such as GTSRB
        images.append(pil_to_uint8(img, size))
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)


def _subsample(s: ImageSet, n: int | None, seed: int) -> ImageSet:
    if not n or n >= len(s):
        return s
    return s.subset(torch.randperm(len(s), generator=torch.Generator().manual_seed(seed))[:n])


def load_folder(path: str, split: str, size: int, n=None, seed=0) -> ImageSet:
    """An ImageFolder split `PATH/<split>/<class>/*`; unreadable files are skipped and counted."""
    root = Path(path).expanduser() / split
    if not root.is_dir():
        raise DataError(f"folder dataset '{path}' has no '{split}/' folder: it needs train/ and test/, "
                        f"each with one sub-folder per class.")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"'{root}' has no class sub-folders.")
    images, labels, skipped = [], [], 0
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.name.startswith(".") or not f.is_file():
                continue
            try:
                with Image.open(f) as img:
                    images.append(pil_to_uint8(img, size))
                labels.append(c)
            except (OSError, ValueError, Image.DecompressionBombError):
                skipped += 1
    if not images:
        raise DataError(f"'{root}' holds no readable images.")
    s = ImageSet(torch.stack(images), torch.tensor(labels), classes, f"folder:{split}", {"skipped": skipped})
    return _subsample(s, n, seed)


GTSRB_CLASSES = [
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70", "speed limit 80",
    "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing", "no passing for trucks",
    "right of way at next intersection", "priority road", "yield", "stop", "no vehicles", "no trucks",
    "no entry", "general caution", "dangerous curve left", "dangerous curve right", "double curve",
    "bumpy road", "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all limits", "turn right ahead", "turn left ahead", "ahead only", "go straight or right",
    "go straight or left", "keep right", "keep left", "roundabout", "end of no passing",
    "end of no passing for trucks",
]

SOURCES: dict[str, Source] = {
    "shapes": Source(synthetic.SPECS["shapes"].description, _embedded("shapes"), target="star"),
    "signs": Source(synthetic.SPECS["signs"].description, _embedded("signs"), target="priority"),
    "cifar10": Source("CIFAR-10 (torchvision): 50k/10k 32 px images, 10 classes.",
                      _torchvision("CIFAR10", lambda s: {"train": s == "train"}), target="truck"),
    "stl10": Source("STL-10 (torchvision): 5k/8k labelled 96 px images, 10 classes; resized.",
                    _torchvision("STL10", lambda s: {"split": s}), target="truck"),
    "gtsrb": Source("GTSRB (torchvision): German traffic signs, 43 classes; resized.",
                    _torchvision("GTSRB", lambda s: {"split": s}, classes=lambda ds: GTSRB_CLASSES), target="priority road"),
    "svhn": Source("SVHN (torchvision): house-number digits, 10 classes.",
                   _torchvision("SVHN", lambda s: {"split": s}, classes=lambda ds: [str(i) for i in range(10)]),
                   target="1"),
}


def default_target(name: str) -> str | None:
    """The class attacks aim at by default on dataset `name` (None for folders: the user picks)."""
    return SOURCES[name].target if name in SOURCES else None


def describe_datasets() -> dict[str, str]:
    return {**{k: v.description for k, v in SOURCES.items()},
            "folder:PATH": "Any ImageFolder tree with train/ and test/ class folders."}


@functools.lru_cache(maxsize=16)
def load_dataset(name: str, split: str, *, root: str = "data", download: bool = False, size: int = 32,
                 n: int | None = None, seed: int = 0) -> ImageSet:
    """Load split `split` of dataset `name` (see module docstring). Treat the result as read-only."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, not '{split}'.")
    if name.startswith("folder:"):
        return load_folder(name[len("folder:"):], split, size, n, seed)
    if name not in SOURCES:
        raise DataError(f"unknown dataset '{name}': choose one of {', '.join(describe_datasets())}.")
    return SOURCES[name].load(split, Path(root).expanduser(), download, size, n=n, seed=seed)
