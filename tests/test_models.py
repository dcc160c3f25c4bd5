import pytest
import torch

from distill_core.models.resnet import STAGES, ProjectionHead, cifar_resnet18


@pytest.mark.parametrize("width, channels", [(1.0, (64, 128, 256, 512)), (0.25, (16, 32, 64, 128))])
def test_encoder_stages_and_feature(width, channels):
    enc = cifar_resnet18(width).eval()
    x = torch.rand(2, 3, 32, 32)
    feature, stages = enc(x, stages=True)
    assert enc.stage_channels == channels and enc.feature_dim == channels[-1]
    assert feature.shape == (2, channels[-1])
    # CIFAR variant: 3x3/1 stem, no max-pool, so layer1 keeps 32 px and each later stage halves it
    assert [tuple(s.shape[1:]) for s in stages] == [(c, 32 // 2 ** i, 32 // 2 ** i) for i, c in enumerate(channels)]
    assert torch.allclose(enc(x), feature)  # one pass gives both; the plain call agrees
    assert torch.allclose(feature, stages[-1].mean((2, 3)))


def test_a_stride_2_stem_halves_every_stage_and_its_shape_rebuilds_it():
    enc = cifar_resnet18(0.25, stem_stride=2).eval()
    _, stages = enc(torch.rand(2, 3, 32, 32), stages=True)
    assert [s.shape[-1] for s in stages] == [16, 8, 4, 2]
    twin = cifar_resnet18(**enc.shape).eval()
    twin.load_state_dict(enc.state_dict())
    x = torch.rand(1, 3, 32, 32)
    assert twin.stem_stride == 2 and torch.equal(twin(x), enc(x))
    with pytest.raises(ValueError, match="stem_stride must be one of"):
        cifar_resnet18(0.25, stem_stride=4)


def test_encoder_normalises_its_input():
    enc = cifar_resnet18(0.25).eval()
    x = torch.rand(1, 3, 32, 32)
    mean, std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.25, 0.25, 0.25])
    other = cifar_resnet18(0.25, mean=tuple(mean.tolist()), std=tuple(std.tolist())).eval()
    other.load_state_dict(enc.state_dict())
    assert not torch.allclose(enc(x), other(x))  # the normalisation is part of the model
    assert "mean" not in enc.state_dict()  # ...but lives in the sidecar, not the weights


def test_module_names_match_torchvision_resnet():
    names = set(cifar_resnet18(1.0).state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer2.0.downsample.0.weight", "layer4.1.bn2.bias"} <= names
    assert all(f"{s}.0.conv1.weight" in names for s in STAGES)


def test_projection_head_matches_badencoder():
    head = ProjectionHead(512, 128)
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head.net[0].bias is None and head.net[3].out_features == 128
    assert head(torch.rand(4, 512)).shape == (4, 128)
