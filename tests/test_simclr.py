import math

import torch

from distill_core.data.synthetic import generate
from distill_core.device import Runtime
from distill_core.models.resnet import ProjectionHead, cifar_resnet18
from distill_core.ssl.simclr import SimCLRTrainer, info_nce


def _reference_nt_xent(z1, z2, t):
    """BadEncoder's form written out: -log(exp(pos/t) / sum_{k != i} exp(sim_ik/t)), mean over 2N views."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).tolist()
    n, total = len(z1), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        dot = lambda a, b: sum(p * q for p, q in zip(z[a], z[b]))
        denom = sum(math.exp(dot(i, k) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(dot(i, j) / t) / denom)
    return total / (2 * n)


def test_info_nce_matches_hand_computation():
    z1, z2 = torch.randn(3, 4), torch.randn(3, 4)
    assert abs(info_nce(z1, z2, 0.5).item() - _reference_nt_xent(z1, z2, 0.5)) < 1e-5
    assert abs(info_nce(z1, z2, 0.1).item() - _reference_nt_xent(z1, z2, 0.1)) < 1e-4


def test_info_nce_two_pairs_by_hand():
    # two orthogonal pairs, views identical: each view's positive has cos 1, the two others cos 0
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 2 * math.exp(0)))  # t = 0.5
    assert abs(info_nce(z1, z1.clone(), 0.5).item() - expected) < 1e-6


def test_simclr_steps_lower_the_loss():
    torch.manual_seed(0)
    rt = Runtime.create("cpu", "fp32", channels_last=False)
    enc, head = cifar_resnet18(0.125), ProjectionHead(64)
    images = generate("shapes", 32).images
    trainer = SimCLRTrainer(enc, head, rt, lr=3e-3, gen=torch.Generator().manual_seed(0))
    losses = [trainer.step(images).item() for _ in range(30)]
    assert sum(losses[-5:]) / 5 < sum(losses[:3]) / 3 - 0.2  # measured: 3.98 -> 3.55
