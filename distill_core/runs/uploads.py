"""Files users upload (checkpoints, trigger images) are kept beside the runs, named by their content, and
checked before any task sees them: a checkpoint must load as an encoder, an image must decode."""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import torch
from PIL import Image

from ..data.datasets import pil_to_uint8
from ..data.triggers import make_trigger
from ..models.checkpoint import load_encoder

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_IMAGE_PIXELS = 40_000_000  # an upload is shrunk to the encoder's 32 px anyway; bigger is refused undecoded


def keep_upload(data: bytes, name: str, root: Path) -> Path:
    """Write `data` to `root/uploads/<hash>-<safe name>` (the same file uploaded twice is kept once)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-80:] or "upload"
    path = Path(root) / "uploads" / f"{hashlib.sha256(data).hexdigest()[:16]}-{safe}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def checked_checkpoint(data: bytes, name: str, root: Path) -> Path:
    """Keep an uploaded encoder checkpoint if it loads (ValueError/CheckpointError say why not)."""
    if Path(name).suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"'{name}' is not a checkpoint: upload a {', '.join(CHECKPOINT_SUFFIXES)} file.")
    path = keep_upload(data, name, root)
    load_encoder(path)  # refuses pickled code, foreign layouts and broken files with one clear message
    return path


def checked_trigger_image(data: bytes, name: str, root: Path) -> Path:
    """Keep an uploaded trigger picture if it decodes as an image (DataError says why not)."""
    suffix = Path(name).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"'{name}' is not an image: upload a {', '.join(IMAGE_SUFFIXES)} file.")
    path = keep_upload(data, name, root)
    make_trigger(str(path), 32)
    return path


def checked_image(data: bytes, name: str, size: int) -> torch.Tensor:
    """An uploaded picture of any size, mode or format as uint8 [1, 3, size, size] (ValueError if it is not one)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"'{name}' is {img.width}x{img.height} pixels; the lab takes pictures of up to "
                                 f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels.")
            img.load()
            return pil_to_uint8(img, size).unsqueeze(0)
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"'{name}' could not be read as an image ({e.__class__.__name__}).") from None
