"""A distillation's settings checked before any work (`Task.check` runs this after the registries in `CHOICES`
have checked the named choices; the pipeline and sweeps check every stage before the first starts)."""
from __future__ import annotations

import math

from ..config import check, check_dataset, check_target, check_trigger, validate_common
from .baselines import offered
from .config import DistillConfig, given_weights
from .losses import LOSSES, PLACEMENTS
from .students import STUDENTS
from .teachers import TEACHERS

CHOICES = {"defence": offered, "teacher": TEACHERS, "student": STUDENTS, "loss": LOSSES,
           "placement": PLACEMENTS}  # a distillation's named choices and their registries


def validate(cfg: DistillConfig) -> None:
    """Refuse a bad setting before any work, naming its field (the named choices are checked by their
    registries first: `CHOICES`). The trigger and target are checked when given (empty: the attack's, read from
    its run when the distillation starts)."""
    validate_common(cfg)
    check_dataset(cfg.data, "data")
    for name in ("eval_every", "n_clean"):
        check(getattr(cfg, name) >= 0, name, "cannot be negative")
    check(0 < cfg.clean_fraction <= 1, "clean_fraction", f"must be in (0, 1], not {cfg.clean_fraction}")
    check(0 <= cfg.prune_ratio < 1, "prune_ratio", f"must be in [0, 1), not {cfg.prune_ratio}")
    check(math.isfinite(cfg.embedding_weight) and cfg.embedding_weight >= 0, "embedding_weight",
          f"must be finite and not negative, not {cfg.embedding_weight}")
    check(cfg.weight_decay >= 0, "weight_decay", "cannot be negative")
    check(cfg.temperature > 0, "temperature", f"must be positive, not {cfg.temperature}")
    check(0 < cfg.crop_scale <= 1, "crop_scale", f"must be in (0, 1], not {cfg.crop_scale}")
    check(cfg.log_every >= 1, "log_every", "must be at least 1")
    check(cfg.checkpoint_every >= 0, "checkpoint_every", f"cannot be negative, not {cfg.checkpoint_every}")
    check(not (cfg.calibrate and LOSSES[cfg.loss].build is None), "calibrate",
          f"'{cfg.loss}' has no teacher term whose weights could be calibrated")
    check(not (cfg.calibrate and LOSSES[cfg.loss].placement(cfg.placement).weigh), "calibrate",
          f"'{cfg.loss}' sets its own stage weights when it starts; calibrating them to attention transfer's would "
          "replace them with attention transfer's own")
    given_weights(cfg)
    check(bool(cfg.encoder), "encoder", "name the suspicious encoder: an attack run's folder or an encoder file")
    check_target(cfg.target, cfg.downstream)
    if cfg.trigger:
        check_trigger(cfg.trigger, cfg.image_size)
