"""The real-photo story end to end: `pipeline --preset cifar` on the CIFAR-10 sample (its training photos as
shadow and clean data, its test photos as the task, target truck) in a fresh process, as `pipeline` times the
demo, once per attack. The sample is `DISTILL_CIFAR10_MINI`, else ../shared/data/cifar10-mini. Target (2-core
CPU, laptop profile): <= 10 min wall per story, peak RSS <= 4 GB.
"""
from __future__ import annotations

import os
from pathlib import Path

from .pipeline import COLUMNS, story_rows

COLUMNS = ["bench", *COLUMNS]
ATTACKS = ("badencoder", "drupe")

SAMPLE = Path(os.environ.get("DISTILL_CIFAR10_MINI", Path(__file__).resolve().parents[2] / "shared" / "data"
                             / "cifar10-mini"))


def run(device: str = "auto", repeats: int = 1) -> list[dict]:
    data = f"folder:{SAMPLE}"
    return [row for attack in ATTACKS
            for row in story_rows(f"real story, {attack}", ["--preset", "cifar", "--pretrain-data", data, "--downstream",
                                                             data, "--target", "truck", "--attack", attack], device)]
