import json
import re

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from distill_core.models.checkpoint import CheckpointError, load_encoder, read_checkpoint, save_encoder
from distill_core.models.resnet import ProjectionHead, cifar_resnet18


def _trained_like(width=0.25):
    enc, head = cifar_resnet18(width), ProjectionHead(int(512 * width))
    with torch.no_grad():  # make BN statistics non-trivial so a bad mapping would show
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return enc.eval(), head.eval()


def test_safetensors_round_trip_with_sidecar(tmp_path):
    enc, head = _trained_like()
    path = save_encoder(tmp_path / "enc", enc, head, {"note": "test"})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    enc2, head2, meta = load_encoder(path, with_head=True)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(enc(x), enc2.eval()(x))
    assert torch.equal(head(enc(x)), head2.eval()(enc(x)))
    assert meta["width"] == 0.25 and meta["feature_dim"] == 128 and meta["provenance"] == {"note": "test"}


def test_the_stem_stride_travels_in_the_sidecar_and_older_sidecars_mean_1(tmp_path):
    enc = cifar_resnet18(0.25, stem_stride=2).eval()
    path = save_encoder(tmp_path / "enc", enc)
    loaded, _, meta = load_encoder(path)
    x = torch.rand(2, 3, 32, 32)
    assert meta["stem_stride"] == 2 and loaded.stem_stride == 2 and torch.equal(loaded.eval()(x), enc(x))
    _edit_sidecar(path, _lacks("stem_stride"))
    assert load_encoder(path)[0].stem_stride == 1


def _badencoder_layout(enc, head) -> dict:
    """A state dict laid out as BadEncoder's SimCLR model: f.f = [conv1, bn1, relu, layer1..4, avgpool]."""
    index = {"conv1.": "f.f.0.", "bn1.": "f.f.1.", "layer1.": "f.f.3.", "layer2.": "f.f.4.",
             "layer3.": "f.f.5.", "layer4.": "f.f.6."}
    out = {}
    for k, v in enc.state_dict().items():
        prefix = next(p for p in index if k.startswith(p))
        out[index[prefix] + k[len(prefix):]] = v
    for k, v in head.state_dict().items():  # head.net.N -> g.N
        out["g." + k[len("net."):]] = v
    return out


def test_badencoder_checkpoint_maps_onto_ours(tmp_path):
    enc, head = _trained_like(1.0)
    sd = _badencoder_layout(enc, head)
    assert "f.f.3.0.conv1.weight" in sd and "g.3.bias" in sd
    torch.save({"epoch": 1000, "state_dict": sd}, tmp_path / "model_1000.pth")
    enc2, head2, meta = load_encoder(tmp_path / "model_1000.pth", with_head=True)
    x = torch.rand(2, 3, 32, 32)
    assert meta["width"] == 1.0 and meta["provenance"]["imported_from"] == "badencoder"
    assert torch.equal(enc(x), enc2.eval()(x))
    assert torch.equal(head(enc(x)), head2.eval()(enc(x)))


def test_data_parallel_prefix_is_stripped(tmp_path):
    enc, _ = _trained_like()
    torch.save({f"module.{k}": v for k, v in enc.state_dict().items()}, tmp_path / "dp.pt")
    enc2, _, _ = load_encoder(tmp_path / "dp.pt")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(enc(x), enc2.eval()(x))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": _Exploit(str(marker))}, tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_encoder(tmp_path / "evil.pth")
    assert not marker.exists()


def test_bad_safetensors_give_clear_errors(tmp_path):
    enc, _ = _trained_like()
    good = save_encoder(tmp_path / "good", enc)

    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(truncated)

    sd = {k: v.clone() for k, v in enc.state_dict().items()}
    sd["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    save_file(sd, str(tmp_path / "nan.safetensors"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_encoder(tmp_path / "nan.safetensors")

    sd = dict(enc.state_dict())
    sd["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(sd, str(tmp_path / "shape.safetensors"))
    with pytest.raises(CheckpointError, match="shape"):
        load_encoder(tmp_path / "shape.safetensors")

    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="known layout"):
        load_encoder(tmp_path / "other.safetensors")

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_encoder(tmp_path / "junk.pth")


def test_infinite_weights_are_refused(tmp_path):
    enc, _ = _trained_like()
    sd = {k: v.clone() for k, v in enc.state_dict().items()}
    sd["layer4.1.bn2.running_var"][3] = float("inf")
    save_file(sd, str(tmp_path / "inf.safetensors"))
    with pytest.raises(CheckpointError, match=r"inf\.safetensors: tensor 'layer4\.1\.bn2\.running_var' contains NaN "
                                              r"or infinite values"):
        load_encoder(tmp_path / "inf.safetensors")


def _edit_sidecar(path, edit):
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    edit(meta)
    side.write_text(json.dumps(meta))


def _lacks(key):
    return lambda meta: meta.pop(key)


def _sets(key, value):
    return lambda meta: meta.__setitem__(key, value)


@pytest.mark.parametrize("edit, words", [
    (_sets("arch", "vit_b_16"), 'says arch = "vit_b_16"; it must be \'cifar_resnet18\''),
    (_sets("width", 0.5), "says width 0.5 (32 channels in the first layer), but the weights have 16"),
    (_sets("width", 2.0), "says width 2 (128 channels in the first layer), but the weights have 16"),
    (_sets("head_dim", 64), "says head_dim 64, but the head's last layer has shape (128, 128)"),
    (_lacks("width"), "lacks 'width'"),
    (_sets("width", -0.25), "says width = -0.25; it must be a width multiplier in (0, 4]"),
    (_sets("width", 0), "says width = 0;"),
    (_sets("width", "wide"), 'says width = "wide";'),
    (_sets("width", None), "says width = null;"),
    (_sets("width", 1000), "says width = 1000;"),  # refused before a 512,000-channel network is built
    (_sets("width", float("nan")), "says width = NaN;"),
    (_sets("input_size", -32), "says input_size = -32; it must be a whole number of pixels from 8 to 512"),
    (_sets("input_size", 32.5), "says input_size = 32.5;"),
    (_sets("input_size", "32px"), 'says input_size = "32px";'),
    (_sets("stem_stride", 3), "says stem_stride = 3; it must be one of 1, 2"),
    (_sets("head_dim", 0), "says head_dim = 0;"),
    (_sets("head_dim", 128.0), "says head_dim = 128.0; it must be null or a whole number"),
    (_sets("normalization", {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.0, 0.2]}), "says normalization ="),
    (_sets("normalization", {"mean": [0.5]}), "says normalization ="),
])
def test_a_sidecar_that_lies_or_makes_no_sense_is_named(tmp_path, edit, words):
    enc, head = _trained_like()
    path = save_encoder(tmp_path / "enc", enc, head)
    _edit_sidecar(path, edit)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, with_head=True)
    message = str(err.value)
    assert message.startswith("enc.json, the sidecar of enc.safetensors,") and words in message, message
    assert "\n" not in message and err.value.__cause__ is None  # one sentence, no chained traceback


@pytest.mark.parametrize("text, words", [("{not json", "is not valid JSON (line 1"), ("", "is not valid JSON"),
                                         ("[0.25]", "is not a JSON object"), ("\udcff", "is not valid JSON")])
def test_a_sidecar_that_is_no_json_object_is_named(tmp_path, text, words):
    enc, _ = _trained_like()
    path = save_encoder(tmp_path / "enc", enc)
    path.with_suffix(".json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CheckpointError, match=re.escape(f"enc.json, the sidecar of enc.safetensors, {words}")):
        load_encoder(path)


def _like(keys_and_shapes: dict) -> dict:
    return {k: torch.zeros(shape) for k, shape in keys_and_shapes.items()}


@pytest.mark.parametrize("sd, family", [
    (lambda: {k: v.flatten()[:2].clone() for k, v in torchvision.models.resnet50().state_dict().items()},
     "a ResNet with bottleneck blocks (ResNet-50 or deeper)"),
    (lambda: {**dict(cifar_resnet18(0.25).state_dict()), "conv1.weight": torch.zeros(16, 3, 7, 7),
              "fc.weight": torch.zeros(10, 128), "fc.bias": torch.zeros(10)},  # torchvision's resnet18 names
     "an ImageNet-style network (7x7 first convolution)"),
    (lambda: _like({"cls_token": (1, 1, 8), "pos_embed": (1, 5, 8), "patch_embed.proj.weight": (8, 3, 16, 16),
                    "blocks.0.attn.qkv.weight": (24, 8)}), "a Vision Transformer"),  # timm's ViT
    (lambda: _like({"class_token": (1, 1, 8), "conv_proj.weight": (8, 3, 16, 16),
                    "encoder.layers.encoder_layer_0.self_attention.in_proj_weight": (24, 8)}), "a Vision Transformer"),
])
def test_another_architecture_is_named(tmp_path, sd, family):
    for path in (tmp_path / "other.safetensors", tmp_path / "other.pth"):
        tensors = {k: v.contiguous() for k, v in sd().items()}
        save_file(tensors, str(path)) if path.suffix == ".safetensors" else torch.save(tensors, path)
        with pytest.raises(CheckpointError, match=re.escape(f"{path.name} holds {family}; the lab builds CIFAR "
                                                            f"ResNet-18 encoders only.")):
            load_encoder(path)


def test_a_stem_that_is_no_convolution_is_named(tmp_path):
    save_file({"conv1.weight": torch.zeros(())}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensor 'conv1.weight' has shape \(\), not a convolution's"):
        load_encoder(tmp_path / "odd.safetensors")
