"""Each distillation loss against a value worked out by hand from its paper's definition."""
import math

import pytest
import torch

from distill_core.distill.losses import LOSSES
from distill_core.distill.losses.afd import AttentionFeatureDistillation, afd_loss
from distill_core.distill.losses.at import at_loss
from distill_core.distill.losses.cc import cc_loss
from distill_core.distill.losses.fitnet import hint_loss
from distill_core.distill.losses.kd import kd_loss
from distill_core.distill.losses.sp import sp_loss

TEACHER_LOSSES = [name for name, spec in LOSSES.items() if spec.build is not None]


def maps(*rows):
    """[B, C, 1, W] from nested lists [image][channel][position]."""
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(2)


def test_at_compares_normalised_squared_activation_maps():
    s = maps([[1.0, 0.0], [1.0, 0.0]])  # channel mean of squares: (1, 0) -> unit (1, 0)
    t = maps([[3.0, 4.0]])              # (9, 16) -> (9, 16)/sqrt(337)
    # unit vectors a, b: mean over 2 positions of (a - b)^2 = (2 - 2 a.b) / 2
    assert at_loss(s, t).item() == pytest.approx(1 - 9 / math.sqrt(337), rel=1e-5)
    assert at_loss(maps([[1.0, 0.0]]), maps([[0.0, 1.0]])).item() == pytest.approx(1.0)


def test_afd_weights_normalised_channel_distances_by_attention():
    s = maps([[3.0, 4.0], [1.0, 0.0]])  # channel maps -> (0.6, 0.8), (1, 0)
    t = maps([[4.0, 3.0], [0.0, 1.0]])  # -> (0.8, 0.6), (0, 1)
    rho = torch.tensor([[0.25, 0.75]])
    # per channel, mean over positions: 0.04 and 1.0
    assert afd_loss(s, t, rho).item() == pytest.approx(0.25 * 0.04 + 0.75 * 1.0, rel=1e-5)


def test_afd_attention_is_a_distribution_and_trains_with_the_student():
    loss = AttentionFeatureDistillation(8, 16)
    s = torch.randn(4, 8, 5, 5, requires_grad=True)
    out = loss(s, torch.randn(4, 16, 5, 5))
    out.backward()
    assert loss.attention[0].weight.grad.abs().sum() > 0 and loss.project.weight.grad.abs().sum() > 0
    assert s.grad.abs().sum() > 0


def test_cc_matches_the_taylor_expanded_rbf_kernel():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # orthogonal: dot 0 off the diagonal
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # parallel after normalising: dot 1
    g = 0.4
    k1 = math.exp(-2 * g) * (1 + 2 * g + (2 * g) ** 2 / 2)  # order-2 expansion at dot 1
    k0 = math.exp(-2 * g)
    assert cc_loss(s, t).item() == pytest.approx(2 * (k1 - k0) ** 2 / 4, rel=1e-5)


def test_fitnet_is_the_mean_squared_hint_error():
    assert hint_loss(maps([[1.0, 2.0]]), maps([[3.0, 2.0]])).item() == pytest.approx(2.0)


def test_kd_is_temperature_scaled_kl_of_softened_embeddings():
    T = 0.5
    s = torch.tensor([[0.0, 0.0]])                 # softmax: (1/2, 1/2)
    t = torch.tensor([[T * math.log(3.0), 0.0]])   # softmax(t / T): (3/4, 1/4)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(s, t, T).item() == pytest.approx(kl * T ** 2, rel=1e-5)


def test_sp_compares_row_normalised_gram_matrices():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # G = I
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # G = ones -> rows (1, 1)/sqrt 2
    r = 1 / math.sqrt(2)
    assert sp_loss(s, t).item() == pytest.approx((2 * (1 - r) ** 2 + 2 * r ** 2) / 4, rel=1e-5)


@pytest.mark.parametrize("name", TEACHER_LOSSES)
def test_every_loss_is_zero_on_agreement_and_adapts_widths(name):
    build = LOSSES[name].build
    t = torch.randn(6, 16, 4, 4).relu()
    assert build(16, 16)(t.clone(), t).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(6, 8, 4, 4, requires_grad=True)  # a thinner student
    out = build(8, 16)(s, t)
    out.backward()
    assert out.ndim == 0 and out.item() > 0 and s.grad.abs().sum() > 0
