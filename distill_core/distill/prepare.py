"""The `prepare` task: build a distillation's teacher and student into its `reuse` folder, and stop there.

A sweep runs it once per shared teacher and warm-up student before the cells that need them (on Ray, the
cells wait on it), so every cell finds them kept instead of training them again. With `score_before` it also
scores the teacher it built: the pruned teacher is fine-pruning, a defence of its own (`baselines.py`).
"""
from __future__ import annotations

import time

from ..config import check
from ..evaluate.downstream import figures
from ..events import CancelToken
from ..runs.store import Run
from .config import DistillConfig
from .setup import open_defence
from .students import build_student
from .teachers import build_teacher
from .trainer import open_setup, suspect_figures, teacher_budget


def prepare(cfg: DistillConfig, run: Run, cancel: CancelToken) -> dict:
    check(bool(cfg.reuse), "reuse", "name the folder the prepared teacher and student are kept in")
    t0 = time.perf_counter()
    if cfg.score_before:  # the downstream task is loaded only to score on
        setup = open_setup(cfg, run, cancel)
        cfg, defence, clean = setup.cfg, setup.defence, setup.clean
    else:
        setup = None
        cfg, _, defence, clean = open_defence(cfg, run, cancel)
    teacher = build_teacher(defence)
    build_student(defence)
    summary = {"task": "prepare", "teacher": cfg.teacher, "student": cfg.student, "n_clean": len(clean),
               "kept": [str(p) for p in defence.kept]}
    if setup and teacher:
        summary.update(suspect_figures(setup), target=setup.evaluator.classes[setup.evaluator.target],
                       teacher_scores=figures(setup.evaluator.score(teacher.encoder)), teacher_budget=teacher_budget(setup),
                       teacher_record=defence.records or None)  # fine-pruning: how many channels, what kNN said
    return {**summary, "seconds": {"total": time.perf_counter() - t0}}
