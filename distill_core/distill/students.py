"""Students, by name: the encoder distillation trains. Each returns (encoder, projection head).

- `scratch`: a randomly initialised encoder (width: `student_width`, default the suspicious encoder's).
- `poisoned-init`: a copy of the suspicious encoder, as NAD's student; the loss must actively erase the
  backdoor here, since the student starts with it.
- `warmup`: random initialisation, then SimCLR on the clean subset for `warmup_epochs` before distillation
  (the study's best student).
A new student's weights depend on the seed alone, so the same student meets every teacher and loss.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..choices import Choice
from ..models.resnet import ProjectionHead, cifar_resnet18
from .setup import Defence


def _fresh(d: Defence) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(d.cfg.seed)
    encoder = cifar_resnet18(**{**d.suspicious.shape, "width": d.cfg.student_width or d.suspicious.width})
    return encoder, ProjectionHead(encoder.feature_dim, d.head_dim)


def scratch(d: Defence):
    return _fresh(d)


def poisoned_init(d: Defence):
    encoder = d.copy_suspicious()
    head = d.suspicious_head or ProjectionHead(encoder.feature_dim, d.head_dim)
    return encoder, copy.deepcopy(head)


def warmup(d: Defence):
    encoder, head = _fresh(d)
    return d.simclr(encoder, head, d.cfg.warmup_epochs, "warmup")


@dataclass(frozen=True)
class StudentSpec(Choice):
    build: Callable[[Defence], tuple[nn.Module, nn.Module]]
    simclr_epochs: str = ""   # the config field of its SimCLR phase's epochs ("warmup" phase), if it has one


STUDENTS: dict[str, StudentSpec] = {s.name: s for s in (
    StudentSpec("scratch", "A randomly initialised encoder.", scratch, knobs=("student_width",)),
    StudentSpec("poisoned-init", "A copy of the suspicious encoder (as in NAD): it starts with the backdoor.",
                poisoned_init, cite="Li et al., ICLR 2021"),
    StudentSpec("warmup", "Random initialisation, then SimCLR warm-up on the clean subset (the study's best "
                "student).", warmup, "warmup_epochs", knobs=("warmup_epochs", "student_width")),
)}


def build_student(d: Defence) -> tuple[nn.Module, nn.Module]:
    """The chosen student and its projection head, on the device."""
    torch.manual_seed(d.cfg.seed)
    student, head = STUDENTS[d.cfg.student].build(d)
    return d.rt.module(student), d.rt.module(head)
