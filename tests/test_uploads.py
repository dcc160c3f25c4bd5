"""Uploaded files are kept by content and checked before any task sees them."""
import pytest

from distill_core.models.checkpoint import load_encoder
from distill_core.presets import DEMO_ENCODER
from distill_core.runs.uploads import checked_checkpoint, checked_trigger_image


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
