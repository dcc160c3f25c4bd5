"""Uploaded files are kept by content and checked before any task sees them."""
import io
import struct
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from distill_core.models.checkpoint import load_encoder
from distill_core.presets import DEMO_ENCODER
from distill_core.runs import uploads
from distill_core.runs.uploads import checked_checkpoint, checked_image, checked_trigger_image

ROOT = Path(__file__).resolve().parents[1]


def test_a_real_checkpoint_is_kept_once_under_its_content_hash(tmp_path):
    data = DEMO_ENCODER.read_bytes()
    first = checked_checkpoint(data, "../../evil name.safetensors", tmp_path)
    again = checked_checkpoint(data, "../../evil name.safetensors", tmp_path)
    assert first == again and first.parent == tmp_path / "uploads" and first.name.endswith("-evil_name.safetensors")
    _, _, meta = load_encoder(first)
    assert meta["width"] == 0.25  # no sidecar came with it: the architecture is read off the tensors


def test_bad_uploads_get_one_clear_message(tmp_path):
    with pytest.raises(ValueError, match="not a checkpoint"):
        checked_checkpoint(b"hello", "notes.txt", tmp_path)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        checked_checkpoint(b"\x00" * 64, "broken.safetensors", tmp_path)
    with pytest.raises(ValueError, match="not an image"):
        checked_trigger_image(b"hello", "notes.txt", tmp_path)
    with pytest.raises(ValueError, match="could not be read as an image"):
        checked_trigger_image(b"not really a png", "logo.png", tmp_path)
    assert not any((tmp_path / "uploads").glob("*"))  # a refused file is not kept


def test_the_checkpoint_cap_is_the_apps_upload_limit():
    """The library and Streamlit refuse the same files, whichever way they arrive."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert uploads.MAX_CHECKPOINT_BYTES == config["server"]["maxUploadSize"] * 1024 * 1024
    assert uploads.MAX_IMAGE_BYTES < uploads.MAX_CHECKPOINT_BYTES


def test_oversize_uploads_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    data = DEMO_ENCODER.read_bytes()
    monkeypatch.setattr(uploads, "MAX_CHECKPOINT_BYTES", len(data) - 1)
    with pytest.raises(ValueError, match=r"'enc.safetensors' is \d+ MB; the lab takes files of up to \d+ MB"):
        checked_checkpoint(data, "enc.safetensors", tmp_path)
    picture = _png(Image.new("RGB", (64, 64), (200, 0, 0)))
    monkeypatch.setattr(uploads, "MAX_IMAGE_BYTES", len(picture) - 1)
    with pytest.raises(ValueError, match="the lab takes files of up to"):
        checked_trigger_image(picture, "logo.png", tmp_path)
    with pytest.raises(ValueError, match="the lab takes files of up to"):
        checked_image(picture, "photo.png", 32)
    assert not (tmp_path / "uploads").exists()


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of one colour whose few kilobytes decode to width x height pixels."""
    z = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(7000, 7000), (20000, 20000)])
def test_a_decompression_bomb_is_refused_undecoded(tmp_path, monkeypatch, size):
    """7000 x 7000 is under PIL's own bomb limit (89 Mpx), so only the lab's cap stops it."""
    data = _bomb(*size)
    assert len(data) < 100_000
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the bomb was decoded"))
    with pytest.raises(ValueError, match="megapixels"):
        checked_image(data, "bomb.png", 32)
    with pytest.raises(ValueError, match="megapixels"):
        checked_trigger_image(data, "bomb.png", tmp_path)
    assert not (tmp_path / "uploads").exists()


def _gray16(value: int) -> Image.Image:
    return Image.fromarray(np.full((20, 30), value, dtype=np.uint16))


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a NaN cast to uint8 warns, then gives any value
@pytest.mark.parametrize("img, fmt, colour", [
    (Image.new("L", (40, 30), 200), "PNG", (200, 200, 200)),
    (Image.new("RGBA", (500, 300), (255, 0, 0, 128)), "PNG", (255, 0, 0)),
    (_gray16(40000), "PNG", (156, 156, 156)),  # 16-bit keeps its brightness: 40000 / 65535 * 255
    (_gray16(65535), "TIFF", (255, 255, 255)),
    (Image.new("P", (40, 40), 0), "PNG", (0, 0, 0)),
    (Image.new("1", (10, 10), 1), "PNG", (255, 255, 255)),
    (Image.new("1", (10, 10), 1), "BMP", (255, 255, 255)),
    (Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
    (Image.new("RGB", (1, 1), (0, 0, 255)), "PNG", (0, 0, 255)),
    (Image.new("RGB", (1, 1), (0, 255, 0)), "GIF", (0, 255, 0)),
    (Image.new("RGB", (3, 2), (0, 255, 0)), "WEBP", (0, 255, 0)),
    (Image.new("F", (5, 5), float("nan")), "TIFF", (0, 0, 0)),  # no finite value at all
])
def test_pictures_of_any_mode_and_size_become_encoder_inputs(img, fmt, colour):
    out = checked_image(_png(img, fmt), f"x.{fmt.lower()}", 16)
    assert out.shape == (1, 3, 16, 16) and out.dtype == torch.uint8
    assert (out[0, :, 8, 8].int() - torch.tensor(colour)).abs().max() <= 3, out[0, :, 8, 8]


def _noise_picture(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    return _png(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)


def _bmp_with_bad_palette() -> bytes:
    """Found by Hypothesis: a grayscale BMP declaring 255 palette colours makes PIL raise ValueError."""
    data = bytearray(_png(Image.new("L", (4, 4)), "BMP"))
    data[46] = 255  # biClrUsed
    return bytes(data)


@pytest.mark.parametrize("data, why", [
    (b"%PDF-1.4 not a picture", "not a PNG, JPEG, BMP, GIF, WebP or TIFF picture"),
    (b"", "not a PNG, JPEG, BMP, GIF, WebP or TIFF picture"),
    (_noise_picture("PNG")[:2000], "the file is cut short"),
    (_noise_picture("JPEG")[:1000], "the file is cut short"),
    (_noise_picture("JPEG")[:100], "the file is cut short"),
    (_noise_picture("GIF")[:3000], "the file is cut short"),
    (_noise_picture("WEBP")[:500], "the file is damaged: OSError"),
    (_bmp_with_bad_palette(), "the file is damaged: ValueError"),
])
def test_non_pictures_and_cut_files_give_one_clear_value_error(data, why):
    with pytest.raises(ValueError) as err:
        checked_image(data, "upload.png", 32)
    assert str(err.value) == f"'upload.png' could not be read as an image ({why})."
