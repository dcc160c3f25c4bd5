"""Triggers: a pattern and a mask stamped on images in pixel space, x' = x * (1 - mask) + pattern * mask.

Specs (CLI `--trigger`, app widgets) are `NAME[:key=value,...]` or a file path:
- `white` (default): BadEncoder's white square, 10x10 at rows/cols 21-30 of a 32x32 image, i.e. the
  bottom-right corner with a 1-pixel margin; size scales with the image (options `size`, `pos`);
- `checkerboard`: a black/white 1-pixel checkerboard patch (BadNets-style); options `size`, `pos`;
- `noise`: a patch of uniform random colours (options `size`, `pos`, `seed`);
- `blend`: a full-image random pattern blended at `alpha` (Chen et al., 2017, "blended injection");
- `image:path=FILE.png` or just `FILE.png`: a user picture as a patch (its alpha channel, if any, is
  the mask); options `size`, `pos`;
- `FILE.npz`: a trigger file in BadEncoder's layout.
`pos` is `br` (default), `bl`, `tr`, `tl`, `center` or `ROW-COL` (top-left pixel).

BadEncoder's `.npz` stores `t` = pattern * mask and `tm` = 1 - mask (the *keep* mask), both H x W x 3 in
0-255 pixel units with a leading list axis, and applies `x * tm + t`: the same formula as above.
`save_npz`/`load_npz` read and write exactly that layout, so files move between the two code bases.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..choices import Choice
from ..files import write_atomic_with
from .datasets import DataError, open_image, pil_to_uint8


@dataclass
class Trigger:
    pattern: torch.Tensor  # float [3, H, W] in [0, 1]
    mask: torch.Tensor     # float [1, H, W] in [0, 1]; 1 = trigger pixel
    name: str = "trigger"

    def __post_init__(self):
        if self.pattern.shape[-2:] != self.mask.shape[-2:]:
            raise ValueError("trigger pattern and mask differ in size")

    @property
    def size(self) -> int:
        return self.mask.shape[-1]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Stamp on float images [B, 3, H, W] in [0, 1] (any device); returns a new tensor."""
        if x.shape[-1] != self.size or x.shape[-2] != self.mask.shape[-2]:
            raise ValueError(f"trigger is {self.size} px but images are {x.shape[-1]} px")
        m, p = self.mask.to(x.device, x.dtype), self.pattern.to(x.device, x.dtype)
        return x * (1 - m) + p * m

    __call__ = apply

    def box(self) -> tuple[int, int, int, int] | None:
        """(top, left, bottom, right) of the mask's support, exclusive ends; None for an empty mask."""
        rows, cols = torch.nonzero(self.mask[0] > 0, as_tuple=True)
        if len(rows) == 0:
            return None
        return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1

    def save_npz(self, path: Path | str) -> None:
        keep = (1 - self.mask).permute(1, 2, 0).expand(-1, -1, 3).numpy()
        t = (self.pattern * self.mask).permute(1, 2, 0).numpy() * 255
        binary = bool(((self.mask == 0) | (self.mask == 1)).all())
        t = np.round(t).astype(np.uint8) if binary else t.astype(np.float32)
        keep = keep.astype(np.uint8) if binary else keep.astype(np.float32)
        write_atomic_with(path, lambda f: np.savez(f, t=t[None], tm=keep[None]))


def load_npz(path: Path | str, size: int | None = None) -> Trigger:
    name = Path(path).name
    try:
        with np.load(path) as f:  # allow_pickle stays False: an object array is refused, never unpickled
            t, tm = np.asarray(f["t"], dtype=np.float64), np.asarray(f["tm"], dtype=np.float64)
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise DataError(f"{name} is not a trigger file with arrays 't' and 'tm' ({e.__class__.__name__}).") from None
    t, tm = (a[0] if a.ndim == 4 else a for a in (t, tm))  # drop BadEncoder's list axis
    t, tm = (a[..., None] if a.ndim == 2 else a for a in (t, tm))
    if t.ndim != 3 or t.shape != tm.shape or t.shape[-1] not in (1, 3) or min(t.shape) < 1:
        raise DataError(f"{name}: 't' and 'tm' must both be H x W x 3 images, not {t.shape} and {tm.shape}.")
    if not (np.isfinite(t).all() and np.isfinite(tm).all()):
        raise DataError(f"{name}: the trigger holds NaN or infinite values.")
    mask = torch.from_numpy(1 - tm).float().mean(-1, keepdim=True).permute(2, 0, 1).clamp(0, 1)
    scale = 255.0 if t.max() > 1.0 else 1.0
    pat = torch.from_numpy(t / scale).float().permute(2, 0, 1).expand(3, -1, -1)
    pattern = torch.where(mask > 0, pat / mask.clamp_min(1e-6), torch.zeros_like(pat)).clamp(0, 1)
    trig = Trigger(pattern.contiguous(), mask, Path(path).stem)
    if size is not None and tuple(mask.shape[-2:]) != (size, size):
        raise DataError(f"trigger file {name} is {mask.shape[-2]}x{mask.shape[-1]} px but the images are "
                        f"{size}x{size} px.")
    return trig


def default_patch(size: int) -> int:
    return max(1, round(10 * size / 32))


def _place(size: int, patch: int, pos: str) -> tuple[int, int]:
    if patch > size:
        raise DataError(f"a {patch}-pixel trigger does not fit in a {size}-pixel image.")
    far, mid = size - patch - 1, (size - patch) // 2
    named = {"br": (far, far), "bl": (far, 1), "tr": (1, far), "tl": (1, 1), "center": (mid, mid)}
    if pos in named:
        r, c = named[pos]
        return max(r, 0), max(c, 0)
    try:
        r, c = (int(v) for v in pos.split("-"))
    except ValueError:
        raise DataError(f"trigger position {pos!r} is not one of br, bl, tr, tl, center or ROW-COL.") from None
    if not (0 <= r <= size - patch and 0 <= c <= size - patch):
        raise DataError(f"a {patch}-pixel trigger at row {r}, column {c} does not fit in {size} pixels.")
    return r, c


def patch_trigger(patch: torch.Tensor, size: int, pos: str = "br", alpha: torch.Tensor | None = None,
                  name: str = "patch") -> Trigger:
    """Place a [3, k, k] patch (and optional [1, k, k] alpha) on an empty size x size canvas."""
    k = patch.shape[-1]
    r, c = _place(size, k, pos)
    pattern, mask = torch.zeros(3, size, size), torch.zeros(1, size, size)
    pattern[:, r:r + k, c:c + k] = patch
    mask[:, r:r + k, c:c + k] = 1.0 if alpha is None else alpha
    return Trigger(pattern, mask, name)


def _white(size, k, pos, seed, **_):
    return patch_trigger(torch.ones(3, k, k), size, pos, name="white")


def _checkerboard(size, k, pos, seed, **_):
    board = ((torch.arange(k)[:, None] + torch.arange(k)[None, :]) % 2).float()
    return patch_trigger(board.expand(3, k, k).clone(), size, pos, name="checkerboard")


def _noise(size, k, pos, seed, **_):
    return patch_trigger(torch.rand(3, k, k, generator=torch.Generator().manual_seed(seed)), size, pos, name="noise")


def _blend(size, k, pos, seed, alpha=0.2, **_):
    pattern = torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))
    return Trigger(pattern, torch.full((1, size, size), float(alpha)), "blend")


def _image(size, k, pos, seed, path="", **_):
    img = open_image(Path(path).expanduser(), path)
    rgb = pil_to_uint8(img, k).float() / 255
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA", "PA") else None
    a = pil_to_uint8(alpha, k)[:1].float() / 255 if alpha is not None else None
    return patch_trigger(rgb, size, pos, a, name=Path(path).stem)


# option -> (keyword of the pattern functions, conversion, valid?, what a valid value is)
OPTIONS = {"size": ("k", int, lambda v: v >= 1, "at least 1 pixel"),
           "pos": ("pos", str, lambda v: True, ""),
           "seed": ("seed", int, lambda v: 0 <= v < 2**32, "from 0 to 4294967295"),
           "alpha": ("alpha", float, lambda v: 0 < v <= 1, "in (0, 1]"),
           "path": ("path", str, lambda v: True, "")}


@dataclass(frozen=True)
class TriggerSpec(Choice):
    build: Callable[..., Trigger]  # (size, k, pos, seed, **options) -> the trigger; its knobs are spec options


PATCH = ("size", "pos")
TRIGGERS = {t.name: t for t in (
    TriggerSpec("white", "BadEncoder's white square.", _white, cite="Jia et al., S&P 2022", knobs=PATCH),
    TriggerSpec("checkerboard", "A black and white 1-pixel checkerboard patch.", _checkerboard,
                knobs=PATCH),
    TriggerSpec("noise", "A patch of uniform random colours.", _noise, knobs=(*PATCH, "seed")),
    TriggerSpec("blend", "A random pattern over the whole image, blended at an opacity.", _blend,
                label="blend (whole image)", cite="Chen et al., 2017", knobs=("alpha",)),
    TriggerSpec("image", "A picture of your own as a patch; its alpha channel is the mask.", _image,
                label="an uploaded image…", knobs=(*PATCH, "path")),
)}

TRIGGER_HELP = (f"trigger: a pattern ({', '.join(TRIGGERS)}) with options (NAME:size=..,pos=..), FILE.npz or "
                "FILE.png")


def make_trigger(spec: str = "white", size: int = 32) -> Trigger:
    """Build a trigger from a spec string (see module docstring) for size x size images."""
    spec = (spec or "white").strip()
    suffix = Path(spec).suffix.lower()
    if suffix == ".npz":
        return load_npz(spec, size)
    if suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp") and ":" not in spec.split("/")[0]:
        spec = f"image:path={spec}"
    name, _, opts = spec.partition(":")
    if name not in TRIGGERS:
        raise DataError(f"unknown trigger {name!r}: choose {', '.join(TRIGGERS)}, a .npz or an image file.")
    kw = {"size": size, "k": default_patch(size), "pos": "br", "seed": 0}
    for item in filter(None, opts.split(",")):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in OPTIONS:
            raise DataError(f"trigger option {item!r} must be key=value with key one of {', '.join(OPTIONS)}.")
        dest, convert, valid, what = OPTIONS[key]
        try:
            kw[dest] = convert(value)
        except ValueError:
            raise DataError(f"trigger option {key} needs a number, not {value!r}.") from None
        if not valid(kw[dest]):
            raise DataError(f"trigger option {key} must be {what}, not {value}.")
    return TRIGGERS[name].build(**kw)
