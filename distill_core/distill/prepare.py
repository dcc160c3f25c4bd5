"""The `prepare` task: build a distillation's teacher and student into its `reuse` folder, and stop there.

A sweep runs it once per shared teacher and warm-up student before the cells that need them (on Ray, the
cells wait on it), so every cell finds them kept instead of training them again.
"""
from __future__ import annotations

import time

from ..config import check
from ..events import CancelToken
from ..runs.store import Run
from .checks import validate
from .config import DistillConfig
from .setup import open_defence
from .students import build_student
from .teachers import build_teacher


def prepare(cfg: DistillConfig, run: Run, cancel: CancelToken) -> dict:
    validate(cfg)
    check(bool(cfg.reuse), "reuse", "name the folder the prepared teacher and student are kept in")
    t0 = time.perf_counter()
    cfg, _, defence, clean = open_defence(cfg, run, cancel)
    build_teacher(defence)
    build_student(defence)
    return {"task": "prepare", "teacher": cfg.teacher, "student": cfg.student, "n_clean": len(clean),
            "kept": [str(p) for p in defence.kept], "seconds": {"total": time.perf_counter() - t0}}
