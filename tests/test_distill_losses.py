"""Each distillation loss against a value worked out by hand from its paper's definition."""
import math

import pytest
import torch

from distill_core.distill.losses import LOSSES
from distill_core.distill.losses.afd import (AttentionFeatureDistillation, AuthorsAFD, afd_loss, channel_attention,
                                             relative_entropy)
from distill_core.distill.losses.at import at_loss
from distill_core.distill.losses.cc import ShiftedProduct, cc_loss
from distill_core.distill.losses.fitnet import hint_loss
from distill_core.distill.losses.kd import PerPositionKD, kd_loss
from distill_core.distill.losses.sp import NegativeCosine, sp_loss
from distill_core.models.resnet import STAGES

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


SOURCE = {"at": {s: 500.0 for s in STAGES}, "afd": {s: 125.0 for s in STAGES}, "cc": {"layer4": 100.0},
          "fitnet": {"layer2": 100.0}, "kd": {"layer4": 0.9}, "sp": {"layer4": 3000.0},
          "mimic": {s: 1000.0 for s in STAGES}}  # MIMIC's base; its mutual information adds 10000 at the start
AUTHORS = {"at": ({s: 1000.0 for s in STAGES}, "AttentionTransfer"), "afd": ({s: 1000.0 for s in STAGES}, "AuthorsAFD"),
           "cc": ({s: 1000.0 for s in STAGES}, "ShiftedProduct"), "fitnet": ({s: 1000.0 for s in STAGES}, "Hint"),
           "kd": ({"layer1": 1000.0}, "PerPositionKD"), "sp": ({"layer4": 1.0}, "NegativeCosine"),
           "mimic": ({s: 1000.0 for s in STAGES}, "AttentionTransfer")}  # its own code is the authors'


@pytest.mark.parametrize("name", sorted(SOURCE))  # those read against their references by hand
def test_each_placement_puts_the_loss_where_its_reference_does(name):
    spec = LOSSES[name]
    assert spec.placement("source").weights == SOURCE[name] and spec.placement("source").build is spec.build
    weights, form = AUTHORS[name]
    assert spec.placement("authors").weights == weights and spec.placement("authors").build.__name__ == form
    assert spec.placement("all-stages").weights == {s: spec.weight for s in STAGES}
    with pytest.raises(ValueError, match="unknown placement 'everywhere'"):
        spec.placement("everywhere")
    with pytest.raises(ValueError, match="no teacher term"):
        LOSSES["finetune-only"].placement("source")


def test_sp_at_its_source_is_one_term_on_the_last_stage_at_3000():
    from distill_core.data.augment import SimCLRAugment
    from distill_core.device import Runtime
    from distill_core.distill.distiller import Distiller
    from distill_core.distill.teachers import FrozenTeacher
    from distill_core.models.resnet import ProjectionHead, cifar_resnet18
    from distill_core.ssl.simclr import info_nce

    torch.manual_seed(0)
    student, teacher = cifar_resnet18(0.125, input_size=16), FrozenTeacher(cifar_resnet18(0.125, input_size=16))
    head = ProjectionHead(student.feature_dim, 16)
    d = Distiller(student, head, teacher, LOSSES["sp"].placement("source"), Runtime.create("cpu", "fp32"), lr=1e-3,
                  weight_decay=0.0, temperature=0.5, augment=SimCLRAugment(size=16), gen=torch.Generator())
    views = torch.rand(8, 3, 16, 16)
    terms = d.losses(views)
    assert set(terms) == {"loss", "ssl", "sp.layer4"}
    feature, maps_s = student(views, stages=True)
    _, maps_t = teacher(views[:4])
    z = head(feature)
    sp = sp_loss(maps_s[3][:4], maps_t[3])
    assert terms["sp.layer4"].item() == pytest.approx(sp.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(info_nce(z[:4], z[4:], 0.5).item() + 3000 * sp.item(), rel=1e-5)


def test_the_embedding_term_adds_weight_times_one_minus_cosine_of_final_embeddings():
    from distill_core.data.augment import SimCLRAugment
    from distill_core.device import Runtime
    from distill_core.distill.distiller import Distiller
    from distill_core.distill.teachers import FrozenTeacher
    from distill_core.models.resnet import ProjectionHead, cifar_resnet18
    from distill_core.ssl.simclr import info_nce

    torch.manual_seed(0)
    student, teacher = cifar_resnet18(0.125, input_size=16), FrozenTeacher(cifar_resnet18(0.125, input_size=16))
    head = ProjectionHead(student.feature_dim, 16)
    d = Distiller(student, head, teacher, LOSSES["at"].placement("source"), Runtime.create("cpu", "fp32"), lr=1e-3,
                  weight_decay=0.0, temperature=0.5, augment=SimCLRAugment(size=16), gen=torch.Generator(),
                  embedding_weight=7.0)
    views = torch.rand(8, 3, 16, 16)
    terms = d.losses(views)
    with torch.no_grad():
        feature, _ = student(views, stages=True)
        teacher_feature, _ = teacher(views[:4])
    cos = [float(s @ t / (s.norm() * t.norm())) for s, t in zip(feature[:4], teacher_feature)]
    assert terms["embedding"].item() == pytest.approx(1 - sum(cos) / 4, rel=1e-5)
    at = sum(w * terms[f"at.{s}"].item() for s, w in LOSSES["at"].placement("source").weights.items())
    ssl = info_nce(head(feature)[:4], head(feature)[4:], 0.5).item()
    assert terms["loss"].item() == pytest.approx(ssl + at + 7.0 * terms["embedding"].item(), rel=1e-5)
    d.rt.backward(terms["loss"], d.opt)  # in fp32 too (the teacher's output is an inference tensor)


def test_the_authors_sp_is_minus_the_cosine_of_final_embeddings():
    s, t = maps([[1.0], [0.0]]), maps([[1.0], [1.0]])  # pooled (1, 0) and (1, 1)
    assert NegativeCosine(2, 2)(s, t).item() == pytest.approx(-1 / math.sqrt(2), rel=1e-6)


def test_the_authors_cc_is_a_shifted_product_of_unpooled_differences():
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])[:, :, None, :]
    # |s - 0|, [image][channel][position]: per position, neighbours' products summed over channels:
    # images 0-1: (0, 0); images 1-2: (2, 2); mean over the 2 pairs x 2 positions: 1
    assert ShiftedProduct(2, 2)(s, torch.zeros_like(s)).item() == pytest.approx(1.0)
    # on the unpooled map, not the pooled vector: pooled, images 0 and 1 would give 0.5 x 0.5 x 2 = 0.5 there
    s = torch.tensor([[[1.0, 2.0], [1.0, 0.0]], [[3.0, 1.0], [2.0, 5.0]]])[:, :, None, :]
    assert ShiftedProduct(2, 2)(s, torch.zeros_like(s)).item() == pytest.approx((1 * 3 + 1 * 2 + 2 * 1 + 0 * 5) / 2)


def test_the_authors_kd_sums_the_per_position_kl_over_channels_and_positions():
    T = 0.5
    s = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]])              # [1, 2 channels, 1, 2 positions]
    t = torch.tensor([[[[T * math.log(3.0), 1.0]], [[0.0, 1.0]]]])  # position 1 as in the KD test, position 2 agrees
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert PerPositionKD(2, 2)(s, t).item() == pytest.approx(kl * T ** 2, rel=1e-5)
    # two images, the second agreeing everywhere: their KLDivLoss(reduction='batchmean') divides the sum by 2
    s2, t2 = torch.cat((s, s)), torch.cat((t, s))
    assert PerPositionKD(2, 2)(s2, t2).item() == pytest.approx(kl * T ** 2 / 2, rel=1e-5)
    reference = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(s2 / T, 1), torch.softmax(t2 / T, 1))
    assert PerPositionKD(2, 2)(s2, t2).item() == pytest.approx(reference.item() * T ** 2, rel=1e-5)


def test_afd_attention_is_a_normalised_sigmoid_and_its_entropy_is_kept():
    rho = channel_attention(torch.tensor([[0.0, 0.0], [math.log(3.0), -math.log(3.0)]]))
    assert torch.allclose(rho, torch.tensor([[0.5, 0.5], [0.75, 0.25]]))  # sigmoid: 3/4 and 1/4, sum 1
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert relative_entropy(rho).item() == pytest.approx((1 + h) / 2, rel=1e-6)
    loss = AttentionFeatureDistillation(4, 4)
    loss(torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5))
    assert 0 < loss.diagnostics()["entropy"].item() <= 1


def test_the_authors_afd_attention_never_trains_and_is_redrawn_each_epoch():
    loss = AuthorsAFD(4, 4)
    assert not any(p.requires_grad for p in loss.attention.parameters())
    loss.new_epoch(torch.Generator().manual_seed(5))
    first = loss.attention[0].weight.clone()
    loss.new_epoch(torch.Generator().manual_seed(6))
    assert not torch.equal(first, loss.attention[0].weight)
    loss.new_epoch(torch.Generator().manual_seed(5))
    assert torch.equal(first, loss.attention[0].weight)


def test_the_authors_afd_attention_has_their_width_and_initialisation():
    c = 64
    loss = AuthorsAFD(c, c)
    loss.new_epoch(torch.Generator().manual_seed(0))
    first, second = loss.attention[0], loss.attention[2]
    assert first.weight.shape == (2 * c, c, 1, 1) and second.weight.shape == (c, 2 * c, 1, 1)  # hidden 2C
    assert not first.bias.any() and not second.bias.any()
    # kaiming_normal_(mode='fan_out', nonlinearity='relu'): std sqrt(2 / out_channels)
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / (2 * c)), rel=0.05)
    assert second.weight.std().item() == pytest.approx(math.sqrt(2 / c), rel=0.05)


def test_mimic_dv_bound_is_the_joint_mean_minus_log_mean_exp_of_the_shuffled():
    from distill_core.distill.losses.mimic import dv_bound

    def scores(x, joint_y, shuffled_y):  # a stand-in T: the joint pairs score (1, 2), the shuffled (0, log 3)
        return [torch.tensor([1.0, 2.0]), torch.tensor([0.0, math.log(3.0)])]

    bound = dv_bound(scores, torch.zeros(2, 1), torch.zeros(2, 1), torch.Generator())
    assert bound.item() == pytest.approx(1.5 - math.log((1 + 3) / 2), rel=1e-6)


def test_mimic_estimates_more_information_between_dependent_than_independent_variables():
    from distill_core.device import Runtime
    from distill_core.distill.losses.mimic import estimate_mi
    rt = Runtime.create("cpu", "fp32")
    x = torch.randn(1024, 16, generator=torch.Generator().manual_seed(0))
    dependent = estimate_mi(x, x[:, :4].clone(), rt, epochs=8, batch_size=128, seed=0)
    independent = estimate_mi(x, torch.randn(1024, 4, generator=torch.Generator().manual_seed(1)), rt, epochs=8,
                              batch_size=128, seed=0)
    # measured 2.0-2.3 against 0.10-0.12 over three seeds: the bound is tested on the data it trained on, as MIMIC
    # does, so a large T finds some "information" in independent pairs too, an order of magnitude less
    assert dependent > 1.0 and independent < 0.3 and dependent > 5 * independent


def test_mimic_weights_are_its_base_plus_momentum_times_the_mutual_information_share():
    from distill_core.device import Runtime
    from distill_core.distill.losses.mimic import BASE, MOMENTUM, mi_weights
    from distill_core.models.resnet import cifar_resnet18

    torch.manual_seed(0)
    student = cifar_resnet18(0.125, input_size=16)
    clean = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rt, placement = Runtime.create("cpu", "fp32"), LOSSES["mimic"].placement("source")
    weighed, record = mi_weights(placement, student, clean, rt, epochs=12, batch_size=32, seed=0)
    mi = record["mutual_information"]
    assert set(mi) == set(STAGES) and all(v >= 0 for v in mi.values()) and sum(mi.values()) > 0
    assert weighed.weights == {s: BASE + MOMENTUM * mi[s] / sum(mi.values()) for s in STAGES}
    assert sum(weighed.weights.values()) == pytest.approx(4 * BASE + MOMENTUM)
    assert mi_weights(placement, student, clean, rt, epochs=12, batch_size=32, seed=0)[1] == record  # seeded
    assert placement.embedding == 1.0 and placement.build.__name__ == "AttentionTransfer"  # AT + the clone loss at 1
