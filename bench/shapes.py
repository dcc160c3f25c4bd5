"""The encoder shapes the step benchmarks time: the shipped demo encoder's (read from its sidecar, so a bench
times what the demo trains) and the study's full-width CIFAR ResNet-18."""
from __future__ import annotations

from distill_core.models.checkpoint import encoder_shape, read_checkpoint
from distill_core.presets import DEMO_ENCODER


def demo() -> dict:
    return encoder_shape(read_checkpoint(DEMO_ENCODER)[1])


def full() -> dict:
    return {"width": 1.0}


def label(name: str, shape: dict) -> str:
    stride = f", stem stride {shape['stem_stride']}" if shape.get("stem_stride", 1) != 1 else ""
    return f"{name} (width {shape['width']}{stride})"
