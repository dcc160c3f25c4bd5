"""Interleaved timing (candidates measured in alternation so machine drift hits them alike) and FLOP counts."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate, calls alternating A, B, A, B, ..."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    _sync()
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t = time.perf_counter()
            fn()
            _sync()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (matmuls and convolutions, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])
