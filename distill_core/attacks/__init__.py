"""Attacks that plant a backdoor in a pre-trained encoder, by name.

Each entry is a `Choice` (label, citation, knobs) with a config dataclass (documented defaults from its reference
code) and an objective (`terms`, `end_epoch`); `run_attack` in `runner.py` is the loop they share.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..choices import Choice
from ..config import check, check_dataset, check_target, check_trigger, validate_common
from ..data.datasets import default_target
from ..events import CancelToken
from ..runs.registry import Task
from ..runs.store import Run
from .badencoder import AttackConfig, BadEncoder
from .drupe import Drupe, DrupeConfig
from .references import parse_indices
from .runner import attack_plan, run_attack


@dataclass(frozen=True)
class Attack(Choice):
    config: type
    objective: type
    caveat: str = ""  # what the lab measured that qualifies the title, said wherever it is chosen


ATTACKS = {
    "badencoder": Attack("badencoder", "Triggered images embed like a reference image of the target class, clean "
                         "images embed as before.", AttackConfig, BadEncoder, label="BadEncoder",
                         cite="Jia et al., S&P 2022", knobs=("lambda1", "lambda2")),
    "drupe": Attack("drupe", "BadEncoder with several references and terms that keep triggered embeddings distributed "
                    "like clean ones, so the backdoor is harder to spot.", DrupeConfig, Drupe,
                    "Measured on the demo (seed 0, 10 epochs): its stealth costs its backdoor at this budget. As the "
                    "demo preset runs it, ASR 98% with triggered embeddings 1.39 clean spreads from clean ones "
                    "(clean encoder 0.56, BadEncoder 2.36); a distribution weight of 0.02 / 0.05 / 0.1 instead of "
                    "0.001 gives ASR 96 / 79 / 59% at 1.09 / 0.88 / 0.77, and no setting tried reached both 90% ASR "
                    "and 1.5x the clean distance (docs/fidelity.md).",
                    label="DRUPE", cite="Tao et al., S&P 2024", knobs=("n_refs", "init_cost_dist")),
}


def validate(cfg: AttackConfig) -> None:
    """Refuse a bad setting before any work, naming its field: ranges (those a field declares are checked by
    `validate_common`), the attack's own settings (e.g. DRUPE's references: its objective is cheap to build), and
    the trigger and target, checked against the image size and the downstream's classes without loading any data.
    The attack's name is checked by its registry first (`Task.check`)."""
    validate_common(cfg)
    check_dataset(cfg.data, "data")
    check(0 < cfg.shadow_fraction <= 1, "shadow_fraction", f"must be in (0, 1], not {cfg.shadow_fraction}")
    check(cfg.ref_augs >= 0, "ref_augs", "cannot be negative")
    check(all(i >= 0 for i in parse_indices(cfg.ref_indices)), "ref_indices", "cannot be negative")
    check(0 <= cfg.momentum < 1, "momentum", f"must be in [0, 1), not {cfg.momentum}")
    for name in ("weight_decay", "eval_every"):
        check(getattr(cfg, name) >= 0, name, "cannot be negative")
    check(cfg.log_every >= 1, "log_every", f"must be at least 1, not {cfg.log_every}")
    target = cfg.target or default_target(cfg.downstream)
    check(target is not None, "target", f"{cfg.downstream!r} has no usual target class: name one")
    check_target(target, cfg.downstream)
    check_trigger(cfg.trigger, cfg.image_size)
    ATTACKS[cfg.attack].objective(cfg)


def attack(cfg: AttackConfig, run: Run, cancel: CancelToken) -> dict:
    """The `attack` task: run the attack `cfg.attack` names."""
    run({"kind": "plan", "parts": attack_plan(cfg)})
    return run_attack(cfg, ATTACKS[cfg.attack], run, cancel)


ATTACK_TASK = Task("attack", AttackConfig, attack, "Poison a clean encoder and measure BA/ASR.", validate,
                   variant="attack", variants=ATTACKS, choices={"attack": ATTACKS})
