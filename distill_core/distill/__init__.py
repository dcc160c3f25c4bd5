"""The distillation defence: teachers, students and losses by name, and the task that runs them."""
from __future__ import annotations

from .config import DistillConfig
from .losses import LOSSES
from .students import STUDENTS
from .teachers import TEACHERS
from .trainer import distill_plan, run_distill

__all__ = ["DistillConfig", "LOSSES", "RECOMMENDED", "STUDENTS", "TEACHERS", "distill_plan", "run_distill"]
RECOMMENDED = {"teacher": "finetuned", "student": "warmup", "loss": "at"}  # the study's best parts (Han et al.)
