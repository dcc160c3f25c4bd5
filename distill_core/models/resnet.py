"""CIFAR ResNet-18 encoder with a width knob, and the SimCLR projection head.

The CIFAR variant (He et al., 2016, as used by SimCLR/BadEncoder for 32 px images) replaces the 7x7/2
stem and the max-pool with a single 3x3/1 convolution and drops the classifier. Module names follow
torchvision's ResNet (`conv1`, `bn1`, `layer1..4`, `downsample.0/1`), so foreign state dicts map onto
it by renaming prefixes only (see `checkpoint.py`).

`stem_stride=2` makes the stem a 3x3/2 convolution, so the four stages see a quarter of the pixels: about 3.5x
less time per training step on an AVX2 laptop CPU at the demo's width 0.25 and 32 px (the demo's encoder; every
other encoder keeps the CIFAR stem's stride 1). Images, triggers and attribution maps stay at full size.

The encoder takes images in [0, 1] and normalises them itself: triggers, augmentations and attribution
maps all live in pixel space, and the normalisation travels with the weights in the sidecar.
"""
from __future__ import annotations

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # BadEncoder's CIFAR-10 normalisation
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
STAGES = ("layer1", "layer2", "layer3", "layer4")
STEM_STRIDES = (1, 2)
MAX_WIDTH = 4.0  # 2048 channels in layer4, ~180 M parameters (~700 MB): past any checkpoint the lab takes in


def stage_channels(width: float) -> tuple[int, ...]:
    """Channels of layer1..4 at width multiplier `width` (64, 128, 256, 512 at 1.0; the stem has layer1's)."""
    return tuple(max(4, int(round(c * width))) for c in (64, 128, 256, 512))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """CIFAR ResNet-18 backbone: image in [0, 1] -> feature of size `feature_dim` (512 x width).

    `forward(x, stages=True)` also returns the four stage outputs from the same pass, so
    feature-based distillation never needs a second forward.
    """

    def __init__(self, width: float = 1.0, input_size: int = 32,
                 mean: tuple = CIFAR10_MEAN, std: tuple = CIFAR10_STD, blocks: tuple = (2, 2, 2, 2), stem_stride: int = 1):
        super().__init__()
        if stem_stride not in STEM_STRIDES:
            raise ValueError(f"stem_stride must be one of {STEM_STRIDES}, not {stem_stride}")
        self.width, self.input_size, self.stem_stride = float(width), int(input_size), int(stem_stride)
        chans = stage_channels(width)
        self.stage_channels = chans
        self.feature_dim = chans[-1]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, chans[0], 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(chans[0])
        self.relu = nn.ReLU(inplace=True)
        cin = chans[0]
        for i, (cout, n) in enumerate(zip(chans, blocks)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, STAGES[i], nn.Sequential(*layers))
            cin = cout
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def normalization(self) -> dict:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    @property
    def shape(self) -> dict:
        """What builds another encoder of this architecture: `cifar_resnet18(**encoder.shape)`."""
        return {"width": self.width, "input_size": self.input_size, "stem_stride": self.stem_stride,
                **self.normalization}

    def forward(self, x: torch.Tensor, stages: bool = False):
        x = (x - self.mean) / self.std
        x = self.relu(self.bn1(self.conv1(x)))
        outs = []
        for name in STAGES:
            x = getattr(self, name)(x)
            outs.append(x)
        feature = torch.flatten(self.pool(x), 1)
        return (feature, outs) if stages else feature


class ProjectionHead(nn.Module):
    """SimCLR head as in BadEncoder: Linear(d, d, no bias) -> BatchNorm -> ReLU -> Linear(d, out)."""

    def __init__(self, in_dim: int, out_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim, bias=False), nn.BatchNorm1d(in_dim),
                                 nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def cifar_resnet18(width: float = 1.0, **kwargs) -> ResNetEncoder:
    """Builder in torchvision's style: returns a freshly initialised encoder."""
    return ResNetEncoder(width=width, **kwargs)
