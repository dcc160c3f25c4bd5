"""Figures kept for the life of the process, by what they were computed from.

A worker runs a class's jobs one after another, and every attack on the shipped encoder starts by scoring that
same encoder the same way: fitting its probe, its CA and ASR-B, the live curves' starting point. Kept here, each
attack after the first skips that (measured on the laptop profile: 4 s of a tiny attack's 17 s).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")
MAX_KEPT = 8  # distinct encoder x task pairs; the oldest goes first
_kept: dict[str, object] = {}


def file_identity(path: Path | str) -> list:
    """A saved file as a key: where it is, and its size and modification time (a rewritten file is new)."""
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def remembered(key, compute: Callable[[], T]) -> T:
    """compute() once per `key` (anything JSON can write) in this process; later calls get the same object."""
    k = json.dumps(key, sort_keys=True, default=str)
    if k not in _kept:
        if len(_kept) >= MAX_KEPT:
            _kept.pop(next(iter(_kept)))
        _kept[k] = compute()
    return _kept[k]  # type: ignore[return-value]
