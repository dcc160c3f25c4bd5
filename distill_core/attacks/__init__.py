"""Attacks that plant a backdoor in a pre-trained encoder, by name.

Each entry has a description, a config dataclass (documented defaults from its reference code) and an
objective (`terms`, `end_epoch`); `run_attack` in `runner.py` is the loop they share.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import check
from ..events import CancelToken
from ..runs.registry import Task
from ..runs.store import Run
from .badencoder import AttackConfig, BadEncoder
from .drupe import Drupe, DrupeConfig
from .runner import attack_plan, run_attack
from .runner import validate as validate_settings


@dataclass(frozen=True)
class Attack:
    name: str
    description: str
    config: type
    objective: type
    caveat: str = ""  # what the lab measured that qualifies the description, said wherever it is chosen


ATTACKS = {
    "badencoder": Attack("badencoder", "BadEncoder (Jia et al., S&P 2022): triggered images embed like a "
                         "reference image of the target class, clean images embed as before.", AttackConfig, BadEncoder),
    "drupe": Attack("drupe", "DRUPE (Tao et al., S&P 2024): BadEncoder with several references and terms that "
                    "keep triggered embeddings distributed like clean ones, so the backdoor is harder to spot.",
                    DrupeConfig, Drupe,
                    "Measured on the demo (seed 0, 10 epochs): its stealth costs its backdoor at this budget. As the "
                    "demo preset runs it, ASR 98% with triggered embeddings 1.39 clean spreads from clean ones "
                    "(clean encoder 0.56, BadEncoder 2.36); a distribution weight of 0.02 / 0.05 / 0.1 instead of "
                    "0.001 gives ASR 96 / 79 / 59% at 1.09 / 0.88 / 0.77, and no setting tried reached both 90% ASR "
                    "and 1.5x the clean distance (docs/fidelity.md)."),
}


def validate(cfg: AttackConfig) -> None:
    """Refuse bad settings before any work (the pipeline checks every stage up front with this)."""
    check(cfg.attack in ATTACKS, "attack", f"unknown attack '{cfg.attack}'; choose {', '.join(ATTACKS)}")
    validate_settings(cfg)
    ATTACKS[cfg.attack].objective(cfg)  # the attack's own settings (e.g. DRUPE's references); cheap to build


def attack(cfg: AttackConfig, run: Run, cancel: CancelToken) -> dict:
    """The `attack` task: run the attack `cfg.attack` names."""
    validate(cfg)
    run({"kind": "plan", "parts": attack_plan(cfg)})
    return run_attack(cfg, ATTACKS[cfg.attack], run, cancel)


ATTACK_TASK = Task("attack", AttackConfig, attack, "Poison a clean encoder with BadEncoder or DRUPE and measure BA/ASR.",
                   validate, variant="attack", variants={name: a.config for name, a in ATTACKS.items()})
