import torch
import pytest
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
