"""Defences the field names, as combinations of the lab's parts (teacher, student, loss) and their own settings at
the run's scale, so the app, the CLI (`--defence`), the sweep and its tables call them by their names and cite them.
Each runs on the same clean data and is scored by the same evaluator as every other combination.

- `fine-tuning`: the suspicious encoder trained on the clean data with no teacher term (its SimCLR loss only):
  the baseline of Fine-Pruning (Liu, Dolan-Gavitt & Garg, RAID 2018) and of NAD. Every distillation from a
  fine-tuned teacher also scores that teacher alone: fine-tuning at the teacher's budget.
- `fine-pruning`: Fine-Pruning (Liu et al., RAID 2018): layer4's least active channels pruned until the clean
  accuracy would drop by more than 4 points, then fine-tuned: the `pruned` teacher itself, whose figures a
  distillation reports (`teachers.py`). `fine-pruning (fixed 20%)` is the lab's earlier form.
- `NAD`: Neural Attention Distillation (Li et al., ICLR 2021; bboylyg/NAD `config.py`): the suspicious model is
  the student, its fine-tuned copy the teacher, attention transfer on the last group only at beta 5000 (layer4),
  for 20 epochs after a 5-10 epoch fine-tune; here 4x the teacher's fine-tuning epochs (20 after the demo's 5).
  NAD trains with the labels' cross-entropy; an encoder has none, so the student's SimCLR loss stands in.
  `NAD (at the run's placement)` is the lab's earlier form: AT at the run's placement and epochs.
- `MIMIC` (Han et al., IEEE TIFS 2025; wssun/MIMIC): the suspicious encoder as the teacher, a randomly
  initialised student, its loss (`losses/mimic.py`) and no other term.
A named defence's settings replace the preset's where they say something (NAD and MIMIC carry no extra
final-embedding term), and a flag given beside `--defence` replaces them in turn.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from ..choices import Choice
from .config import DistillConfig, given_weights

NAD_EPOCHS_PER_TEACHER_EPOCH = 4  # NAD: 20 epochs after a 5-epoch fine-tune


def no_settings(cfg: DistillConfig) -> dict:
    return {}


@dataclass(frozen=True)
class NamedDefence(Choice):
    parts: dict[str, str]       # the teacher / student / loss choices that make it (a part left out: any)
    settings: Callable[[DistillConfig], dict] = field(default=no_settings)  # its own, at the run's scale
    encoder: str = "distilled"  # which encoder of the run it is: the student, or the teacher ("teacher_scores")
    offered: bool = True        # a choice of its own on the Distill page (the fine-tuned teacher is any run's)

    def applied(self, cfg: DistillConfig) -> dict:
        """The config overrides that make a run of `cfg`'s scale this defence."""
        return {**self.parts, **self.settings(cfg)}


def nad_settings(cfg: DistillConfig) -> dict:
    return {"weights": "0,0,0,5000", "embedding_weight": 0.0,
            "epochs": max(1, NAD_EPOCHS_PER_TEACHER_EPOCH * cfg.teacher_epochs)}


DEFENCES = {d.name: d for d in (
    NamedDefence("fine-tuning", "The suspicious encoder fine-tuned on the clean data with "
                 "SimCLR alone, no teacher.", {"student": "poisoned-init", "loss": "finetune-only"},
                 cite="Liu et al., RAID 2018"),
    NamedDefence("fine-tuned teacher alone", "The teacher of a distillation, the suspicious "
                 "encoder fine-tuned with SimCLR for the teacher's epochs: fine-tuning at that budget.",
                 {"teacher": "finetuned"}, encoder="teacher_scores", offered=False, cite="Liu et al., RAID 2018"),
    NamedDefence("fine-pruning", "Layer4's least active channels pruned until the clean "
                 "accuracy drops by more than 4 points, then a short fine-tune: the pruned teacher alone (a run also "
                 "distils a student from it, shown beside).",
                 {"teacher": "pruned"}, lambda cfg: {"prune_ratio": 0.0}, encoder="teacher_scores",
                 cite="Liu et al., RAID 2018"),
    NamedDefence("fine-pruning (fixed 20%)", "The lab's earlier fine-pruning: a fixed 20% "
                 "of layer4's channels pruned, then a short fine-tune.", {"teacher": "pruned"},
                 lambda cfg: {"prune_ratio": 0.2}, encoder="teacher_scores", cite="Liu et al., RAID 2018"),
    NamedDefence("NAD", "The suspicious encoder distilled from its fine-tuned copy: attention "
                 "transfer on layer4 at 5000, for 4x the teacher's fine-tuning epochs.",
                 {"teacher": "finetuned", "student": "poisoned-init", "loss": "at"}, nad_settings,
                 cite="Li et al., ICLR 2021"),
    NamedDefence("NAD (at the run's placement)", "The lab's earlier NAD: attention transfer "
                 "at the run's placement and epochs.", {"teacher": "finetuned", "student": "poisoned-init",
                                                        "loss": "at"}, lambda cfg: {"weights": ""},
                 cite="Li et al., ICLR 2021"),
    NamedDefence("MIMIC", "A random student distilled from the suspicious encoder: "
                 "attention transfer weighted by mutual information, and a clone loss.",
                 {"teacher": "poisoned", "student": "scratch", "loss": "mimic"},
                 lambda cfg: {"embedding_weight": 0.0, "weights": ""}, cite="Han et al., IEEE TIFS 2025"),
)}


def offered() -> list[str]:
    """The defences a run can be asked to be (`--defence`, the Distill page's menu), read when asked so that an
    entry registered later is among them."""
    return [name for name, d in DEFENCES.items() if d.offered]


def holds(cfg: DistillConfig, name: str, value) -> bool:
    """Whether `cfg` has a defence's setting (stage weights compared as weights, not as text)."""
    if name == "weights":
        return given_weights(cfg) == given_weights(replace(cfg, weights=value))
    return getattr(cfg, name) == value


def defences_in(choice: dict, config: dict | None = None) -> list[NamedDefence]:
    """The named defences a run with these teacher / student / loss choices (and, when given, this config) is, or
    holds (its teacher). Without a config only the parts are compared."""
    applies = [d for d in DEFENCES.values() if all(choice.get(k) == v for k, v in d.parts.items())]
    if config is not None:
        cfg = DistillConfig(**{k: v for k, v in config.items() if k in DistillConfig.__dataclass_fields__})
        applies = [d for d in applies if all(holds(cfg, k, v) for k, v in d.settings(cfg).items())]
    if choice.get("loss") == "finetune-only":  # no teacher is built: nothing of the teacher's is scored
        applies = [d for d in applies if d.encoder == "distilled"]
    return applies


def defence_name(choice: dict, encoder: str = "distilled", config: dict | None = None) -> str:
    """The named defence ('' if none) that this combination's student (or, as `encoder`, its teacher) is: what a
    table calls it."""
    return next((d.name for d in defences_in(choice, config) if d.encoder == encoder), "")
