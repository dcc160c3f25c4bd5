"""Checks that tests/test_onednn.py runs in a fresh interpreter, on the laptop profile (AVX2 kernels, fp32) or
the machine's own.

`python tests/laptop_checks.py bare CHANNELS...`, `... step WIDTH...` and `... compiled-step WIDTH...` print one JSON line: for each, the worst
relative difference (in norm) of a parameter's gradient between the runtime's channels-last path and plain
contiguous tensors.
"""
import copy
import json
import sys

import torch

from distill_core.data.augment import SimCLRAugment
from distill_core.device import Runtime
from distill_core.distill.losses import LOSSES
from distill_core.distill.teachers import FrozenTeacher
from distill_core.distill.distiller import Distiller
from distill_core.models.resnet import ProjectionHead, cifar_resnet18


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def bare(channels: int) -> float:
    """oneDNN #6035's own case: a 1x1 stride-2 convolution with few input channels, forward then backward 50
    times, through `Runtime.module`/`prepare` against the same convolution in NCHW. An odd batch: on AVX-512
    that is what made 8-15 channels segfault."""
    rt = Runtime.create("cpu", "fp32")
    assert rt.channels_last
    plain = torch.nn.Conv2d(channels, 2 * channels, 1, stride=2, bias=False)
    ours = rt.module(copy.deepcopy(plain))
    worst = 0.0
    for _ in range(50):
        x = torch.randn(33, channels, 16, 16)
        for conv, inp in ((plain, x), (ours, rt.prepare(x))):
            conv.zero_grad()
            conv(inp).square().sum().backward()
        worst = max(worst, relative(ours.weight.grad, plain.weight.grad))
    return worst


def step_gradients(width: float, channels_last: bool, compile: bool = False) -> dict[str, torch.Tensor]:
    """The gradients of one whole distillation step (student InfoNCE + AT on four stages against a frozen
    teacher) at `width`, from fixed weights and images."""
    rt = Runtime.create("cpu", "fp32", channels_last=channels_last, compile=compile)
    torch.manual_seed(0)
    student, head = rt.module(cifar_resnet18(width)), rt.module(ProjectionHead(cifar_resnet18(width).feature_dim))
    teacher = rt.module(FrozenTeacher(cifar_resnet18(width)))
    distiller = Distiller(student, head, teacher, LOSSES["at"].placement("authors"), rt, lr=1e-3,
                          weight_decay=1e-6, temperature=0.5, augment=SimCLRAugment(size=32), gen=torch.Generator())
    views = rt.prepare(torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    distiller.losses(views)["loss"].backward()
    return {name: p.grad for name, p in [*student.named_parameters(), *head.named_parameters()]}


def step(width: float, compile: bool = False) -> float:
    """Channels-last (compiled: as torch.compile lays it out) against eager contiguous tensors."""
    ours, plain = step_gradients(width, True, compile), step_gradients(width, False)
    return max(relative(ours[k], plain[k]) for k in plain)


if __name__ == "__main__":
    check, *values = sys.argv[1:]
    if check == "compiled-step":  # as a run that loads a torchvision dataset: inductor then names its cache
        import torchvision  # noqa: F401  folder before the runtime picks one per CPU capability
    if check == "bare":
        worst = {v: bare(int(v)) for v in values}
    else:
        worst = {v: step(float(v), compile=check == "compiled-step") for v in values}
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "worst": worst}))
