"""Attacks that plant a backdoor in a pre-trained encoder, by name.

Each entry has a description, a config dataclass (documented defaults from its reference code) and an
objective (`terms`, `end_epoch`); `run_attack` in `runner.py` is the loop they share.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..runs.events import CancelToken
from ..runs.store import Run
from .badencoder import AttackConfig, BadEncoder
from .drupe import Drupe, DrupeConfig
from .runner import run_attack


@dataclass(frozen=True)
class Attack:
    name: str
    description: str
    config: type
    objective: type


ATTACKS = {
    "badencoder": Attack("badencoder", "BadEncoder (Jia et al., S&P 2022): triggered images embed like a "
                         "reference image of the target class, clean images embed as before.", AttackConfig, BadEncoder),
    "drupe": Attack("drupe", "DRUPE (Tao et al., S&P 2024): BadEncoder with several references and terms that "
                    "keep triggered embeddings distributed like clean ones, so the backdoor is harder to spot.",
                    DrupeConfig, Drupe),
}


def attack(cfg: AttackConfig, run: Run, cancel: CancelToken) -> dict:
    """The `attack` task: run the attack `cfg.attack` names."""
    if cfg.attack not in ATTACKS:
        raise ValueError(f"attack: unknown attack '{cfg.attack}'; choose {', '.join(ATTACKS)}")
    return run_attack(cfg, ATTACKS[cfg.attack], run, cancel)
