"""Files users upload (checkpoints, trigger images) are kept beside the runs, named by their content, and
checked before any task sees them: a checkpoint must load as an encoder, an image must decode."""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import torch

from ..data.datasets import read_image
from ..data.triggers import make_trigger
from ..files import write_atomic
from ..models.checkpoint import load_encoder

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MB = 1024 * 1024  # Streamlit's megabyte
# The app's uploader already stops files over `server.maxUploadSize` (.streamlit/config.toml: 200 MB, checked
# equal by a test); the same cap here holds for every other way a file reaches the lab (a raised app setting,
# the CLI, scripts). A full-width ResNet-18 with its head is ~45 MB, so it leaves room for foreign checkpoints.
MAX_CHECKPOINT_BYTES = 200 * MB
MAX_IMAGE_BYTES = 20 * MB  # a picture shrunk to 32-96 px never needs more; PNG bombs are stopped by the pixel cap


def _check_size(data: bytes, name: str, cap: int) -> None:
    if len(data) > cap:
        raise ValueError(f"{name!r} is {len(data) / MB:.0f} MB; the lab takes files of up to {cap // MB} MB.")


def keep_upload(data: bytes, name: str, root: Path) -> Path:
    """Write `data` to `root/uploads/<hash>-<safe name>` (the same file uploaded twice is kept once)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-80:] or "upload"
    path = Path(root) / "uploads" / f"{hashlib.sha256(data).hexdigest()[:16]}-{safe}"
    if not path.is_file():
        write_atomic(path, data)
    return path


def _keep_if(check, data: bytes, name: str, root: Path) -> Path:
    """Keep the upload, run `check(path)` on it and remove it again if the check refuses it."""
    path = keep_upload(data, name, root)
    try:
        check(path)
    except ValueError:
        path.unlink(missing_ok=True)  # a refused file is not kept for anyone to pick later
        raise
    return path


def checked_checkpoint(data: bytes, name: str, root: Path) -> Path:
    """Keep an uploaded encoder checkpoint if it loads (ValueError/CheckpointError say why not)."""
    if Path(name).suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{name!r} is not a checkpoint: upload a {', '.join(CHECKPOINT_SUFFIXES)} file.")
    _check_size(data, name, MAX_CHECKPOINT_BYTES)
    # refuses pickled code, foreign layouts and broken files with one clear message
    return _keep_if(load_encoder, data, name, root)


def checked_trigger_image(data: bytes, name: str, root: Path) -> Path:
    """Keep an uploaded trigger picture if it decodes as an image (ValueError says why not)."""
    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{name!r} is not an image: upload a {', '.join(IMAGE_SUFFIXES)} file.")
    checked_image(data, name, 32)  # size and pixel caps, decoded from memory before anything is written
    return _keep_if(lambda path: make_trigger(str(path), 32), data, name, root)


def checked_image(data: bytes, name: str, size: int) -> torch.Tensor:
    """An uploaded picture of any size, mode or format as uint8 [1, 3, size, size] (ValueError if it is not one)."""
    _check_size(data, name, MAX_IMAGE_BYTES)
    return read_image(io.BytesIO(data), name, size).unsqueeze(0)
