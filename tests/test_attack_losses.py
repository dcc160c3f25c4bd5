"""Every attack loss term against a value worked out by hand on a tiny example."""
import math

import pytest
import torch

from distill_core.attacks.badencoder import effectiveness_loss, reference_loss, utility_loss
from distill_core.attacks.drupe import (Drupe, DrupeConfig, max_effectiveness_loss, reference_balance,
                                        reference_separation, separation_penalty, similarities)
from distill_core.attacks.runner import Features
from distill_core.evaluate.distribution import (backdoor_similarity, normalised_distance, random_directions,
                                                sliced_wasserstein)

R2 = 1 / math.sqrt(2)


def test_badencoder_terms_by_hand():
    triggered = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # unnormalised on purpose
    refs = torch.tensor([[1.0, 0.0]])
    assert effectiveness_loss(triggered, refs).item() == pytest.approx(-0.5)  # cos 1 and 0
    refs_aug = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # k=1, A=3
    assert reference_loss(refs_aug, refs).item() == pytest.approx(-(1 + 0 + R2) / 3)
    clean, target = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [5.0, 0.0]])
    assert utility_loss(clean, target).item() == pytest.approx(-(1 + R2) / 2)


def test_drupe_reference_terms_by_hand():
    triggered = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    refs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sims = similarities(triggered, refs)
    assert torch.allclose(sims, torch.tensor([[1, 0, R2], [0, 1, R2]]))
    assert max_effectiveness_loss(sims).item() == pytest.approx(-(1 + 1 + R2) / 3)
    assert reference_balance(sims).item() == pytest.approx(0.0)  # both references used alike
    lopsided = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # per-reference means 1 and 0
    assert reference_balance(lopsided).item() == pytest.approx(R2)  # unbiased std of (1, 0)
    three = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs i <= j: (0,0)=1 (0,1)=0 (0,2)=R2 (1,1)=1 (1,2)=R2 (2,2)=1
    assert reference_separation(three).item() == pytest.approx((3 + 2 * R2) / 6)
    assert [separation_penalty(torch.tensor(v)).item() for v in (0.6, 0.45, 0.3)] == pytest.approx([0.6, 0.09, 0.0])


def test_backdoor_similarity_by_hand():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])  # distinct pairs: 0, 1, 0
    assert backdoor_similarity(z).item() == pytest.approx(1 / 3)


def test_sliced_wasserstein_by_hand_and_against_pot():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [1.0]])
    one = torch.ones(1, 1)  # 1-D, one projection: sorted pairs (0,1), (1,2) -> W2 = 1
    assert sliced_wasserstein(x, y, projections=one).item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g) * 2 + 1
    proj = random_directions(16, 50, torch.Generator().manual_seed(1))
    assert torch.allclose(proj.norm(dim=0), torch.ones(50))
    ot = pytest.importorskip("ot")
    ours = sliced_wasserstein(a, b, projections=proj)
    theirs = ot.sliced_wasserstein_distance(a.double(), b.double(), projections=proj.double())
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    assert normalised_distance(a, b, projections=proj).item() == pytest.approx(ours.item() / b.std(0).mean().item(), rel=1e-5)
    a.requires_grad_(True)
    sliced_wasserstein(a, b, projections=proj).backward()  # DRUPE trains through it
    assert a.grad.abs().sum() > 0


def _features(triggered, refs):
    clean = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    return Features(clean=clean, triggered=triggered, refs=refs, refs_aug=refs.unsqueeze(1),
                    clean_target=clean, ref_target=refs)


def test_drupe_schedule_follows_the_reference_phases():
    cfg = DrupeConfig(n_refs=2, warmup_epochs=1, dist_start=5)
    drupe = Drupe(cfg, torch.Generator().manual_seed(0))
    refs = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    f = _features(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), refs)
    warm, stage1, full = drupe.terms(f, 1), drupe.terms(f, 2), drupe.terms(f, 5)
    sep = warm["separation"]
    assert sep.item() == pytest.approx((1 + 0.6 + 1) / 3)
    utility = warm["l1"] + warm["l2"]
    assert warm["loss"].item() == pytest.approx((utility + 0.5 * sep).item())  # no effectiveness yet
    assert stage1["loss"].item() == pytest.approx(
        (stage1["l0"] + utility + 2 * stage1["balance"] + separation_penalty(sep)).item())
    b = full["balance"]
    expected = (full["l0"] + utility + 0.1 * (b + full["backdoor_similarity"]) + 1e-3 * full["distance"]
                + (2.0 if b > 0.1 else 0.5) * b + separation_penalty(sep))
    assert full["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_drupe_adaptive_weights_and_checkpoint_choice():
    cfg = DrupeConfig(adapt_start=2, select_start=3)
    d = Drupe(cfg)
    good = {"l0": -0.97, "l1": -0.95, "l2": -0.95, "backdoor_similarity": 0.55, "distance": 1.0}
    assert d.end_epoch(2, good) == {"cost": 0.1, "cost_dist": 1e-3, "keep": False}  # not after adapt_start yet
    out = d.end_epoch(3, good)
    assert out["cost"] == pytest.approx(0.125) and out["cost_dist"] == pytest.approx(1.25e-3) and not out["keep"]
    out = d.end_epoch(4, {**good, "distance": 0.8})
    assert out["cost"] == pytest.approx(0.15625) and out["keep"]
    out = d.end_epoch(5, {**good, "distance": 0.9})  # stealthy but not better: not kept
    assert not out["keep"]
    bad = {**good, "l0": -0.5}
    out = d.end_epoch(6, bad)
    assert out["cost"] == pytest.approx(0.1953125 / 1.25 ** 1.25)
    spread = {**good, "backdoor_similarity": 0.4}  # well spread: the angular weight's next rise waits
    before = d.end_epoch(7, spread)["cost"]
    assert d.end_epoch(8, spread)["cost"] == pytest.approx(before)
    with pytest.raises(ValueError, match="at least 2"):
        Drupe(DrupeConfig(n_refs=1))
