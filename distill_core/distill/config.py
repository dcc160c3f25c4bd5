"""The defence's settings. Defaults are the authors' code (`distillation.py`) where it has one; the rest
are the lab's choices, said in the help. Presets shrink the epochs and data for a CPU."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import DownstreamConfig, RuntimeConfig, check, opt
from ..models.resnet import MAX_WIDTH, STAGES


@dataclass
class DistillConfig(RuntimeConfig, DownstreamConfig):
    encoder: str = opt("", "the suspicious encoder: an attack run's folder or its encoder.safetensors (or .pt/.pth)")
    data: str = opt("cifar10", "pre-training dataset the defender's clean subset comes from")
    clean_fraction: float = opt(0.05, "share of the pre-training training split the defender holds (authors: 0.05)")
    n_clean: int = opt(0, "clean images by count instead of fraction (0 = use clean_fraction)")
    defence: str = opt("", "a named defence: its teacher, student, loss "
                           "and own settings at this run's scale, under any flag given; empty = the parts chosen")
    teacher: str = opt("finetuned", "the teacher the student learns from")
    student: str = opt("warmup", "the student that becomes the purified encoder")
    loss: str = opt("at", "the distillation loss (finetune-only: no teacher term)")
    placement: str = opt("source", "where the loss applies and how strongly: source (where its paper or the loss "
                                   "zoos put it), authors (the study's defence code, its own form of SP, CC, KD and "
                                   "AFD) or all-stages (the paper's form on every stage at one weight)")
    weights: str = opt("", "per-stage loss weights: one number for every stage or four (layer1..layer4; 0 skips "
                           "a stage); empty = the placement's")
    calibrate: bool = opt(False, "scale each stage weight of the loss so that it pulls on the student as hard as "
                                 "attention transfer at the same stage and placement (the norm of the mean gradient "
                                 "over the first batches), measured at the start and again after the first epoch; "
                                 "both are recorded")
    embedding_weight: float = opt(0.0, "weight of an extra term on the final embedding, 1 - cos(student, teacher): "
                                       "the authors' optional -cos shifted by one, which their code runs only as its "
                                       "'SP'; beside a stage loss it is the lab's addition (0 = off; MIMIC's own "
                                       "clone loss at 1 comes on top)")
    mi_epochs: int = opt(200, "epochs of each stage's mutual-information estimator that sets MIMIC's stage weights "
                              "(MIMIC: 200)", label="MI estimator epochs", low=1)
    student_width: float = opt(0.0, "student width multiplier (0 = the suspicious encoder's) for new students",
                               label="Student width", low=0, high=MAX_WIDTH)
    teacher_epochs: int = opt(20, "SimCLR fine-tuning epochs of the finetuned teacher (lab's choice; NAD: 5-10 "
                                  "supervised epochs)", label="Teacher fine-tune epochs", low=0)
    prune_ratio: float = opt(0.0, "share of the last stage's channels the pruned teacher removes, least active first; "
                                  "0 = as many as keep the clean kNN accuracy within 4 points (Liu et al.)",
                             label="Pruned share")
    prune_epochs: int = opt(5, "SimCLR fine-tuning epochs after pruning (fine-pruning's short fine-tune)",
                            label="Fine-tune epochs after pruning", low=0)
    warmup_epochs: int = opt(100, "SimCLR epochs of the warmup student before distillation (lab's choice)",
                             label="Student warm-up epochs", low=0)
    epochs: int = opt(500, "distillation epochs (authors: 500)", label="Distillation epochs", low=1)
    batch_size: int = opt(128, "clean images per step (authors: 128)", label="Batch size", low=2)
    lr: float = opt(1e-3, "Adam learning rate for the student (authors: 1e-3)", label="Learning rate", low=1e-8)
    teacher_lr: float = opt(0.0, "Adam learning rate of the teacher's SimCLR fine-tune (0 = lr)",
                            label="Teacher learning rate", low=0)
    weight_decay: float = opt(1e-6, "Adam weight decay (authors: 1e-6)")
    temperature: float = opt(0.5, "the student's InfoNCE temperature (authors: 0.5)")
    crop_scale: float = opt(0.08, "smallest RandomResizedCrop area fraction of the SimCLR views")
    trigger: str = opt("", "trigger for ASR (empty = the attack's, read from the suspicious encoder's run)")
    target: str = opt("", "target class for ASR (empty = the attack's)")
    eval_every: int = opt(0, "epochs between quick CA/ASR estimates for live curves (0 = none)")
    log_every: int = opt(10, "steps between step events")
    reuse: str = opt("", "folder where fine-tuned/pruned teachers and warm-up students are kept and reused by any "
                         "later distillation that would train the very same one (empty = always train)")
    score_before: bool = opt(True, "also score the suspicious encoder and the teacher (a sweep scores its shared "
                                   "stages once instead)")
    checkpoint_every: float = opt(60.0, "seconds of training between resumable checkpoints, kept at an epoch's "
                                        "end (0 = after every epoch)")


def phase_lr(cfg: DistillConfig, phase: str) -> float:
    """The teachers' fine-tunes may take their own rate (`teacher_lr`); the student's phases take `lr`."""
    return (cfg.teacher_lr or cfg.lr) if phase == "teacher" else cfg.lr


def given_weights(cfg: DistillConfig) -> dict[str, float] | None:
    """{stage: weight} for the stages with a non-zero weight, as `weights` gives them (None: not given)."""
    if not cfg.weights.strip():
        return None
    try:
        values = [float(v) for v in cfg.weights.split(",")]
    except ValueError:
        raise ValueError(f"weights: {cfg.weights!r} is not one number or four comma-separated numbers") from None
    check(len(values) in (1, len(STAGES)), "weights", f"give one number or {len(STAGES)}, not {len(values)}")
    check(all(math.isfinite(v) and v >= 0 for v in values), "weights", "must be finite and not negative")
    values = values * len(STAGES) if len(values) == 1 else values
    return {s: w for s, w in zip(STAGES, values) if w > 0}
