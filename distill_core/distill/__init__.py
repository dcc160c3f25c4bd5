"""The distillation defence: teachers, students and losses by name, and the tasks that run them."""
from __future__ import annotations

from ..runs.registry import Task
from .baselines import DEFENCES, offered
from .checks import CHOICES, validate
from .config import DistillConfig
from .losses import LOSSES, PLACEMENTS
from .prepare import prepare
from .students import STUDENTS
from .teachers import TEACHERS
from .trainer import distill_plan, run_distill

__all__ = ["DEFENCES", "DISTILL_TASK", "DistillConfig", "LOSSES", "PLACEMENTS", "PREPARE_TASK", "RECOMMENDED", "STUDENTS",
           "TEACHERS", "distill_plan", "run_distill", "validate"]
RECOMMENDED = {"teacher": "finetuned", "student": "warmup", "loss": "at"}  # the study's best parts (Han et al.)

def defence_settings(cfg: DistillConfig) -> dict:
    """What `--defence NAME` sets: the named defence's parts and its own settings at the run's scale."""
    return DEFENCES[cfg.defence].applied(cfg) if cfg.defence in offered() else {}


DISTILL_TASK = Task("distill", DistillConfig, run_distill, "Purify a suspicious encoder by distilling it into a "
                    "student on clean data.", validate, resumable=True, named=defence_settings, choices=CHOICES)
PREPARE_TASK = Task("prepare", DistillConfig, prepare, "Build a distillation's teacher and student into its reuse "
                    "folder (fine-tuning, pruning, warm-up) without distilling.", validate, named=defence_settings,
                    choices=CHOICES)
