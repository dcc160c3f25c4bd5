"""Every dataset the lab can use, looked up by name, returned as an `ImageSet` at the encoder's size.

- embedded (offline, generated): `shapes` (pre-training), `signs` (downstream); see `synthetic.py`;
- torchvision: `cifar10`, `stl10`, `gtsrb`, `svhn`, read from `root`; downloaded only when the caller
  passes `download=True`;
- `folder:PATH`: any ImageFolder tree with `train/` and `test/` class folders (the same class folders in
  both, each holding at least one readable image; unreadable files are skipped and counted).

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

from ..events import cancel_point
from . import synthetic
from .imageset import ImageSet

SPLITS = ("train", "test")
EMBEDDED_SIZES = {"train": 5000, "test": 1000}
MAX_IMAGE_PIXELS = 40_000_000  # images are shrunk to the encoder's size anyway; bigger ones are refused undecoded


class DataError(ValueError):
    """Data that cannot be loaded; the message says what to do in one sentence."""


@dataclass(frozen=True)
class Source:
    description: str
    load: Callable[..., ImageSet]  # (split, root, download, size) -> ImageSet
    classes: tuple[str, ...]       # known without loading, so a config's target is checked before any work
    target: str | None = None      # the attack's usual target class (BadEncoder's choice for real sets)
    marker: str = ""               # what torchvision leaves under the data root once the set is there


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
    """Any PIL image (grayscale, palette, RGBA, CMYK, 16-bit, float, any size) -> uint8 [3, size, size].

    16-bit images keep their brightness (65535 -> 255); 32-bit integer and float images have no fixed range,
    so theirs is stretched to 0-255, NaN and infinities counting as the darkest finite value.
    """
    if img.mode.startswith("I;16"):
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257).round().astype(np.uint8))
    elif img.mode in ("I", "F"):
        with np.errstate(invalid="ignore"):  # signalling NaNs in a float image: NaN, dealt with below
            a = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(a)
        lo, hi = (a[finite].min(), a[finite].max()) if finite.any() else (0.0, 0.0)
        a = (np.where(finite, a, lo) - lo) / max(hi - lo, 1e-12) * 255
        img = Image.fromarray(a.round().astype(np.uint8))
    img = img.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=None)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


# How PIL says a file is not a picture it can decode: unknown or broken headers (UnidentifiedImageError,
# SyntaxError), cut-short data (OSError, EOFError), bad values in a plugin (ValueError), its own bomb guard.
UNREADABLE = (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError)


def open_image(source, name: str) -> Image.Image:
    """Decode an untrusted picture (a path or a file object) into a loaded PIL image.

    One whose header declares more than MAX_IMAGE_PIXELS is refused before decoding: a small file can declare
    a huge canvas (a decompression bomb). Every way a file can fail to decode is one DataError naming it.
    """
    try:
        with Image.open(source) as img:
            w, h = img.size
            if 0 < w * h <= MAX_IMAGE_PIXELS:
                img.load()
    except UNREADABLE as e:
        raise DataError(f"{name!r} could not be read as an image ({_reason(e)}).") from None
    if w * h == 0:
        raise DataError(f"{name!r} could not be read as an image (it has no pixels).")
    if w * h > MAX_IMAGE_PIXELS:
        raise DataError(f"{name!r} is {w}x{h} pixels; the lab takes pictures of up to "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels.")
    return img


def _reason(e: Exception) -> str:
    if isinstance(e, Image.DecompressionBombError):  # PIL's own guard, far above ours, fires while opening
        return f"it declares a canvas far over the lab's {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, Image.UnidentifiedImageError):
        return "not a PNG, JPEG, BMP, GIF, WebP or TIFF picture"
    if isinstance(e, EOFError) or "truncated" in str(e).lower():
        return "the file is cut short"
    return f"the file is damaged: {e.__class__.__name__}"


def read_image(source, name: str, size: int) -> torch.Tensor:
    """An untrusted picture as uint8 [3, size, size] (DataError, a ValueError, if it is not one)."""
    return pil_to_uint8(open_image(source, name), size)


def _torchvision(cls_name: str, split_arg: Callable[[str], dict], classes: tuple[str, ...]):
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
        return _subsample(ImageSet(images, labels, list(classes), f"{cls_name.lower()}:{split}"), n, seed)
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
        cancel_point()
        images.append(pil_to_uint8(img, size))
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)


def _subsample(s: ImageSet, n: int | None, seed: int) -> ImageSet:
    if not n or n >= len(s):
        return s
    return s.subset(torch.randperm(len(s), generator=torch.Generator().manual_seed(seed))[:n])


def folder_classes(path: str, split: str = "train") -> list[str]:
    """The class sub-folder names of `PATH/<split>`, in label order; cheap (no image is read)."""
    root = Path(path).expanduser() / split
    if not root.is_dir():
        raise DataError(f"folder dataset {path!r} has no '{split}/' folder: it needs train/ and test/, "
                        f"each with one sub-folder per class.")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"'{root}' has no class sub-folders.")
    return classes


def load_folder(path: str, split: str, size: int, n=None, seed=0) -> ImageSet:
    """An ImageFolder split `PATH/<split>/<class>/*`; unreadable files are skipped and counted.

    A label is a class folder's place in the sorted list, so train/ and test/ must have the same class
    folders and none may end up empty: either would silently give images another class's label.
    """
    classes = folder_classes(path, split)
    other = next(s for s in SPLITS if s != split)
    if (Path(path).expanduser() / other).is_dir() and folder_classes(path, other) != classes:
        differ = sorted(set(classes) ^ set(folder_classes(path, other)))
        raise DataError(f"folder dataset {path!r} has different class folders in train/ and test/ "
                        f"({', '.join(differ)}); give both the same ones.")
    root = Path(path).expanduser() / split
    images, labels, skipped = [], [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.name.startswith(".") or not f.is_file():
                continue
            cancel_point()
            try:
                images.append(read_image(f, f"{name}/{f.name}", size))
                labels.append(c)
            except DataError:
                skipped.append(f"{name}/{f.name}")
    if not images:
        raise DataError(f"'{root}' holds no readable images.")
    empty = [name for c, name in enumerate(classes) if c not in set(labels)]
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} in '{root}' hold no readable images: add some or "
                        f"remove the folder(s) from train/ and test/.")
    meta = {"skipped": len(skipped), "skipped_files": skipped[:10]}
    return _subsample(ImageSet(torch.stack(images), torch.tensor(labels), classes, f"folder:{split}", meta), n, seed)


def skipped_note(s: ImageSet) -> str | None:
    """A sentence for a run's log when loading `s` skipped unreadable files (None when none were)."""
    if not s.meta.get("skipped"):
        return None
    return (f"{s.meta['skipped']} unreadable file(s) in {s.name} were skipped "
            f"(first: {', '.join(s.meta['skipped_files'][:3])}).")


def report_skipped(emit, *sets: ImageSet) -> None:
    """Warn in a run's log about every set whose loading skipped unreadable files."""
    for note in filter(None, map(skipped_note, sets)):
        emit({"kind": "log", "level": "warning", "message": note})


GTSRB_CLASSES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70", "speed limit 80",
    "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing", "no passing for trucks",
    "right of way at next intersection", "priority road", "yield", "stop", "no vehicles", "no trucks",
    "no entry", "general caution", "dangerous curve left", "dangerous curve right", "double curve",
    "bumpy road", "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all limits", "turn right ahead", "turn left ahead", "ahead only", "go straight or right",
    "go straight or left", "keep right", "keep left", "roundabout", "end of no passing",
    "end of no passing for trucks",
)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
SVHN_CLASSES = tuple(str(i) for i in range(10))


def _embedded_source(name: str, target: str) -> Source:
    spec = synthetic.SPECS[name]
    return Source(spec.description, _embedded(name), tuple(spec.shapes), target)


def _torchvision_source(description: str, cls_name: str, split_arg: Callable[[str], dict],
                        classes: tuple[str, ...], target: str, marker: str) -> Source:
    return Source(description, _torchvision(cls_name, split_arg, classes), classes, target, marker)


SOURCES: dict[str, Source] = {
    "shapes": _embedded_source("shapes", "star"),
    "signs": _embedded_source("signs", "priority"),
    "cifar10": _torchvision_source("CIFAR-10 (torchvision): 50k/10k 32 px images, 10 classes.", "CIFAR10",
                                   lambda s: {"train": s == "train"}, CIFAR10_CLASSES, "truck",
                                   "cifar-10-batches-py"),
    "stl10": _torchvision_source("STL-10 (torchvision): 5k/8k labelled 96 px images, 10 classes; resized.", "STL10",
                                 lambda s: {"split": s}, STL10_CLASSES, "truck", "stl10_binary"),
    "gtsrb": _torchvision_source("GTSRB (torchvision): German traffic signs, 43 classes; resized.", "GTSRB",
                                 lambda s: {"split": s}, GTSRB_CLASSES, "priority road", "gtsrb"),
    "svhn": _torchvision_source("SVHN (torchvision): house-number digits, 10 classes.", "SVHN",
                                lambda s: {"split": s}, SVHN_CLASSES, "1", "train_32x32.mat"),
}


def default_target(name: str) -> str | None:
    """The class attacks aim at by default on dataset `name` (None for folders: the user picks)."""
    return SOURCES[name].target if name in SOURCES else None


def present(name: str, root: str = "data") -> bool:
    """Whether dataset `name` can be read without a download: embedded sets always, a torchvision set once
    its files are under `root`, a folder once it has a train/ folder."""
    if name.startswith("folder:"):
        return (Path(name[len("folder:"):]).expanduser() / "train").is_dir()
    source = SOURCES.get(name)
    return source is not None and (not source.marker or (Path(root).expanduser() / source.marker).exists())


def download(name: str, root: str = "data") -> None:
    """Fetch both splits of torchvision set `name` into `root`; DataError (one sentence) when it cannot."""
    for split in SPLITS:
        load_dataset(name, split, root=root, download=True)


def describe_datasets() -> dict[str, str]:
    return {**{k: v.description for k, v in SOURCES.items()},
            "folder:PATH": "Any ImageFolder tree with train/ and test/ class folders."}


def class_names(name: str) -> list[str]:
    """The classes of dataset `name` in label order, found without loading it (a folder's are its train/
    class folders), so configs are checked before any work; DataError if `name` cannot be a dataset."""
    if name.startswith("folder:"):
        return folder_classes(name[len("folder:"):], "train")
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(describe_datasets())}.")
    return list(SOURCES[name].classes)


@functools.lru_cache(maxsize=16)
def load_dataset(name: str, split: str, *, root: str = "data", download: bool = False, size: int = 32,
                 n: int | None = None, seed: int = 0) -> ImageSet:
    """Load split `split` of dataset `name` (see module docstring). Treat the result as read-only."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
    if name.startswith("folder:"):
        return load_folder(name[len("folder:"):], split, size, n, seed)
    class_names(name)  # refuses an unknown name
    return SOURCES[name].load(split, Path(root).expanduser(), download, size, n=n, seed=seed)
