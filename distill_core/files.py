"""Whole-file writes that a crash or a concurrent reader never sees half done, and JSON in and out.

One writer for every file the lab keeps (records, weights, resume states, films, uploads, probes, pictures): a
temporary file in the same directory, flushed to disk, then renamed over the target. tests/test_files.py checks
that no other module of the engine writes a file itself.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import BinaryIO, Callable


def jsonable(obj):
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file atomically: a reader sees the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic_with(path: Path, save: Callable[[BinaryIO], object]) -> None:
    """`write_atomic` for the writers that take a file (np.savez, torch.save, PIL's Image.save, savefig): `save`
    writes into memory and the bytes reach `path` atomically. Given the path itself, such a writer fills the file in
    place, and a page reading it meanwhile (or a crash) meets half a file."""
    buffer = io.BytesIO()
    save(buffer)
    write_atomic(path, buffer.getvalue())


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=jsonable))


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)
