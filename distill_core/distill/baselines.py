"""Defences the field names, as combinations of the lab's parts, so the app, the sweep and its tables call them
by their names and cite them. Each runs on the same clean data and is scored by the same evaluator as every
other combination.

- `fine-tuning`: the suspicious encoder trained on the clean data with no teacher term (its SimCLR loss only):
  the baseline of Fine-Pruning (Liu, Dolan-Gavitt & Garg, RAID 2018) and of NAD.
- `NAD`: Neural Attention Distillation (Li et al., ICLR 2021): the suspicious model is the student, its copy
  fine-tuned on the clean data the teacher, attention transfer the loss. NAD weighs layer2-4 of a supervised
  network; here the run's placement applies.
- `fine-pruning`: Fine-Pruning (Liu et al., RAID 2018): the suspicious encoder with its least active last-stage
  channels pruned, then fine-tuned: the `pruned` teacher itself, whose figures a distillation reports.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Baseline:
    name: str
    cite: str
    parts: dict[str, str]   # the teacher / student / loss choices that make it (a part left out: any)
    encoder: str = "distilled"  # which encoder of the run it is: the student, or the teacher ("teacher_scores")


BASELINES = {b.name: b for b in (
    Baseline("fine-tuning", "Liu et al., RAID 2018", {"student": "poisoned-init", "loss": "finetune-only"}),
    Baseline("NAD", "Li et al., ICLR 2021", {"teacher": "finetuned", "student": "poisoned-init", "loss": "at"}),
    Baseline("fine-pruning", "Liu et al., RAID 2018", {"teacher": "pruned"}, encoder="teacher_scores"),
)}


def baselines_in(choice: dict) -> list[Baseline]:
    """The named defences a run with these teacher / student / loss choices is, or holds (its teacher)."""
    applies = [b for b in BASELINES.values() if all(choice.get(k) == v for k, v in b.parts.items())]
    if choice.get("loss") == "finetune-only":  # no teacher is built: nothing of the teacher's is scored
        applies = [b for b in applies if b.encoder == "distilled"]
    return applies


def defence_name(choice: dict, encoder: str = "distilled") -> str:
    """The named defence ('' if none) that this combination's student (or, as `encoder`, its teacher) is: what a
    table calls it."""
    return next((b.name for b in baselines_in(choice) if b.encoder == encoder), "")
