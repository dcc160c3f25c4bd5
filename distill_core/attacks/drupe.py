"""DRUPE (Tao et al., "Distribution Preserving Backdoor Attack in Self-supervised Learning", IEEE S&P 2024).

BadEncoder's triggered embeddings collapse onto the reference: an out-of-distribution cluster a defender
can spot. DRUPE keeps the backdoor while making triggered embeddings look like clean ones:
- several references; each triggered image only has to match its *closest* reference (per-sample
  maximum cosine), with a penalty on the spread (std) of the per-reference mean similarity so all
  references stay in use (balance), and a penalty on reference-to-reference similarity (separation);
- distribution alignment: the sliced Wasserstein distance between raw triggered and raw clean
  embeddings of the batch, divided by the mean per-dimension std of the clean embeddings;
- an angular term: mean cosine among triggered embeddings, pushed down so they do not form one tight cluster.
Schedule (reference `main.py`, CIFAR settings): a warm-up epoch with utility and separation terms only;
effectiveness + balance until `dist_start` (epoch 5); then all terms with adaptive weights `cost`
(angular + balance, start 0.1) and `cost_dist` (distribution, start 1e-3). After `adapt_start` (20) each
weight moves up x1.25 when the attack is good enough (L0 < -0.96, L1 and L2 < -0.9; for `cost_dist` also
backdoor similarity < 0.6) and down by 1.25^1.25 otherwise (patience 1). After `select_start` (24) the
checkpoint with the lowest distribution distance among epochs that pass the gate is kept.

Where the reference code differs from its evident intent, this implementation follows the intent:
- the backdoor similarity there subtracts `diag_embed` of a 2-D matrix (broadcasting to B x B x B); here
  it is the mean cosine over distinct pairs;
- the selection measure there is the last batch's distance; here it is the epoch mean (less noisy).
Kept as in the code: the separation term averages cos(r_i, r_j) over i <= j, self-pairs included, so its
thresholds 0.5 / 0.4 mean "references more alike than orthogonal" for three references.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import opt
from ..evaluate.distribution import backdoor_similarity, normalised_distance
from .badencoder import AttackConfig, reference_loss, utility_loss


@dataclass
class DrupeConfig(AttackConfig):
    attack: str = opt("drupe", "the attack to run")
    n_refs: int = opt(3, "reference images of the target class (DRUPE: 3)", label="References", low=1)
    init_cost: float = opt(0.1, "DRUPE: starting weight of the angular and balance terms")
    init_cost_dist: float = opt(1e-3, "DRUPE: starting weight of the distribution (sliced Wasserstein) term",
                                 label="Distribution weight", low=0)
    warmup_epochs: int = opt(1, "DRUPE: epochs of utility-only warm-up")
    dist_start: int = opt(5, "DRUPE: first epoch with the distribution and angular terms")
    adapt_start: int = opt(20, "DRUPE: epochs after which the weights adapt")
    select_start: int = opt(24, "DRUPE: epochs after which the lowest-distance checkpoint is kept")
    swd_projections: int = opt(50, "DRUPE: random projections of the sliced Wasserstein distance (POT's default)")


def similarities(triggered: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """cos(triggered_b, ref_i) as [k, B]."""
    return F.normalize(refs.float(), dim=1) @ F.normalize(triggered.float(), dim=1).T


def max_effectiveness_loss(sims: torch.Tensor) -> torch.Tensor:
    """L0: each triggered image against its closest reference."""
    return -sims.max(0).values.mean()


def reference_balance(sims: torch.Tensor) -> torch.Tensor:
    """Spread (unbiased std) of the per-reference mean similarity."""
    return sims.mean(1).std()


def reference_separation(refs: torch.Tensor) -> torch.Tensor:
    """Mean cos(r_i, r_j) over i <= j (the reference code's form, self-pairs included)."""
    z = F.normalize(refs.float(), dim=1)
    s = z @ z.T
    iu = torch.triu_indices(len(z), len(z), device=z.device)
    return s[iu[0], iu[1]].mean()


def separation_penalty(sep: torch.Tensor) -> torch.Tensor:
    weight = 1.0 if sep > 0.5 else 0.2 if sep > 0.4 else 0.0
    return weight * sep


class Drupe:
    """DRUPE's loss with its schedule and adaptive weights (state lives here, not in globals)."""

    L0_GOOD, UTILITY_GOOD, B2B_GOOD = -0.96, -0.9, 0.6
    UP, DOWN = 1.25, 1.25 ** 1.25

    def __init__(self, cfg: DrupeConfig, generator: torch.Generator | None = None):
        if cfg.n_refs < 2:
            raise ValueError("n_refs: DRUPE needs at least 2 references (it balances them)")
        self.cfg, self.gen = cfg, generator
        self.cost, self.cost_dist = cfg.init_cost, cfg.init_cost_dist
        self.up = self.down = self.up_dist = self.down_dist = 0
        self.best = float("inf")

    def terms(self, f, epoch: int) -> dict[str, torch.Tensor]:
        c = self.cfg
        sims = similarities(f.triggered, f.refs)
        l0 = max_effectiveness_loss(sims)
        l1 = reference_loss(f.refs_aug, f.ref_target)
        l2 = utility_loss(f.clean, f.clean_target)
        balance = reference_balance(sims)
        sep = reference_separation(f.refs)
        b2b = backdoor_similarity(f.triggered)
        dist = normalised_distance(f.triggered, f.clean, n_projections=c.swd_projections, generator=self.gen)
        utility = c.lambda1 * l1 + c.lambda2 * l2
        if epoch <= c.warmup_epochs:
            loss = utility + (0.3 if sep < 0.2 else 0.5) * sep
        elif epoch < c.dist_start:
            loss = l0 + utility + 2 * balance + separation_penalty(sep)
        else:
            loss = (l0 + utility + self.cost * (balance + b2b) + self.cost_dist * dist
                    + (2.0 if balance > 0.1 else 0.5) * balance + separation_penalty(sep))
        return {"loss": loss, "l0": l0, "l1": l1, "l2": l2, "balance": balance, "separation": sep,
                "backdoor_similarity": b2b, "distance": dist}

    def end_epoch(self, epoch: int, m: dict[str, float]) -> dict:
        """Adapt the weights from the epoch's mean terms; says whether to keep this checkpoint."""
        keep = False
        if epoch > self.cfg.warmup_epochs and epoch > self.cfg.adapt_start:
            good = m["l0"] < self.L0_GOOD and m["l1"] < self.UTILITY_GOOD and m["l2"] < self.UTILITY_GOOD
            self.up, self.down = (self.up + 1, 0) if good else (0, self.down + 1)
            self.cost = self._move(self.cost, self.cfg.init_cost, "up", "down")
            stealthy = good and m["backdoor_similarity"] < self.B2B_GOOD
            self.up_dist, self.down_dist = (self.up_dist + 1, 0) if stealthy else (0, self.down_dist + 1)
            if stealthy and m["backdoor_similarity"] < self.B2B_GOOD - 0.1:
                self.up -= 1  # already spread out: delay the next rise of the angular weight
            self.cost_dist = self._move(self.cost_dist, self.cfg.init_cost_dist, "up_dist", "down_dist")
            if stealthy and epoch > self.cfg.select_start and m["distance"] < self.best:
                self.best, keep = m["distance"], True
        return {"cost": self.cost, "cost_dist": self.cost_dist, "keep": keep}

    def _move(self, value: float, init: float, up: str, down: str) -> float:
        """Patience 1, as the reference: one qualifying epoch moves the weight."""
        if getattr(self, up) >= 1:
            setattr(self, up, 0)
            return init if value == 0 else value * self.UP
        if getattr(self, down) >= 1:
            setattr(self, down, 0)
            return value / self.DOWN
        return value
