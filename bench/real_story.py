"""The real-photo story end to end: `pipeline --preset cifar` on the CIFAR-10 sample (its training photos as
shadow and clean data, its test photos as the task, target truck) in a fresh process, as `pipeline` times the
demo. The sample is `DISTILL_CIFAR10_MINI`, else ../shared/data/cifar10-mini. Target (2-core CPU, laptop
profile): <= 10 min wall, peak RSS <= 4 GB.
"""
from __future__ import annotations

import os
from pathlib import Path

from .pipeline import COLUMNS, story_rows  # noqa: F401  (COLUMNS: the table's)

SAMPLE = Path(os.environ.get("DISTILL_CIFAR10_MINI", Path(__file__).resolve().parents[2] / "shared" / "data"
                             / "cifar10-mini"))


def run(device: str = "auto", repeats: int = 1) -> list[dict]:
    data = f"folder:{SAMPLE}"
    return story_rows("real story", ["--preset", "cifar", "--pretrain-data", data, "--downstream", data,
                                     "--target", "truck"], device)
