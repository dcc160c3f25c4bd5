import numpy as np
import pytest
import torch
from PIL import Image

from distill_core.data.datasets import DataError
from distill_core.data.triggers import load_npz, make_trigger


def test_default_is_badencoders_white_square():
    t = make_trigger("white", 32)
    assert t.box() == (21, 21, 31, 31)  # rows/cols 21..30
    assert t.mask.sum() == 100 and torch.all(t.pattern[:, 21:31, 21:31] == 1)
    x = torch.rand(2, 3, 32, 32)
    y = t.apply(x)
    assert torch.all(y[:, :, 21:31, 21:31] == 1) and torch.equal(y[:, :, :21], x[:, :, :21])
    assert make_trigger("white", 64).box() == (43, 43, 63, 63)  # scaled: 20 px, 1 px margin


def test_npz_uses_badencoders_layout_and_formula(tmp_path):
    t = make_trigger("checkerboard:size=4,pos=2-3", 32)
    t.save_npz(tmp_path / "t.npz")
    f = np.load(tmp_path / "t.npz")
    assert f["t"].shape == (1, 32, 32, 3) and f["tm"].shape == (1, 32, 32, 3)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    theirs = img * f["tm"][0] + f["t"][0]  # BadEncoder: x * tm + t in 0-255 HWC
    ours = t.apply(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]
    assert np.allclose(theirs, (ours.permute(1, 2, 0) * 255).numpy(), atol=1e-3)
    back = load_npz(tmp_path / "t.npz")
    assert torch.equal(back.mask, t.mask) and torch.equal(back.pattern, t.pattern)


def test_pattern_kinds():
    board = make_trigger("checkerboard:size=4,pos=tl", 32)
    assert board.pattern[0, 1:5, 1:5].tolist() == [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    n1, n2 = make_trigger("noise:seed=1"), make_trigger("noise:seed=2")
    assert not torch.equal(n1.pattern, n2.pattern) and n1.box() == (21, 21, 31, 31)
    blend = make_trigger("blend:alpha=0.1")
    x = torch.zeros(1, 3, 32, 32)
    assert torch.allclose(blend.apply(x), 0.1 * blend.pattern[None])


def test_user_png_with_alpha(tmp_path):
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[5:15, 5:15, 3] = 255  # opaque red square in a transparent frame
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    t = make_trigger(str(tmp_path / "logo.png"), 32)
    assert t.box() is not None and t.mask.max() == 1 and t.mask[0, 21, 21] < 0.5
    assert torch.allclose(t.pattern[0][t.mask[0] > 0.99], torch.tensor(1.0))
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="could not be read"):
        make_trigger(str(tmp_path / "notes.png"))


@pytest.mark.parametrize("spec, words", [("sparkle", "unknown trigger"), ("white:size=33", "does not fit"),
                                         ("white:size=abc", "needs a number"), ("white:colour=red", "key one of"),
                                         ("white:pos=middle", "not one of"), ("blend:alpha=2", "alpha"),
                                         ("blend:alpha=nan", "alpha must be in"), ("white:size=0", "at least 1"),
                                         ("noise:seed=-1", "seed must be from 0"), ("noise:seed=99999999999", "seed"),
                                         ("missing.png", "no such file"), ("missing.npz", "not a trigger file")])
def test_bad_specs_say_what_is_wrong(spec, words):
    with pytest.raises(DataError, match=words):
        make_trigger(spec, 32)


@pytest.mark.parametrize("t, tm, words", [
    (np.zeros((32, 32, 3)), np.ones((16, 16, 3)), "must both be H x W x 3"),
    (np.zeros(5), np.ones(5), "must both be H x W x 3"),
    (np.full((32, 32, 3), np.nan), np.ones((32, 32, 3)), "NaN or infinite"),
    (np.zeros((32, 16, 3)), np.ones((32, 16, 3)), "is 32x16 px but the images are 32x32 px"),
])
def test_a_broken_trigger_file_is_named(tmp_path, t, tm, words):
    np.savez(tmp_path / "t.npz", t=t, tm=tm)
    with pytest.raises(DataError, match=words):
        make_trigger(str(tmp_path / "t.npz"), 32)


def test_a_trigger_picture_is_decoded_under_the_pixel_cap(tmp_path, monkeypatch):
    import distill_core.data.datasets as datasets
    Image.new("RGB", (40, 40), (0, 0, 255)).save(tmp_path / "big.png")
    monkeypatch.setattr(datasets, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="40x40 pixels; the lab takes pictures of up to"):
        make_trigger(str(tmp_path / "big.png"), 32)
