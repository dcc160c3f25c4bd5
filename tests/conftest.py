"""Shared fixtures. Tests run on the CPU in fp32 unless they say otherwise."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Runs that tests start without an explicit directory go to a scratch store, never the checkout's runs/.
os.environ.setdefault("DISTILL_RUNS", tempfile.mkdtemp(prefix="distill-test-runs-"))

import pytest
import torch

from distill_core.device import Runtime

ROOT = Path(__file__).resolve().parents[1]
CIFAR10_MINI = Path(os.environ.get("DISTILL_CIFAR10_MINI", ROOT.parent / "shared" / "data" / "cifar10-mini"))

needs_cifar10_mini = pytest.mark.skipif(not (CIFAR10_MINI / "train").is_dir(),
                                        reason=f"real CIFAR-10 sample not present at {CIFAR10_MINI}")


@pytest.fixture
def cpu() -> Runtime:
    return Runtime.create("cpu", "fp32", channels_last=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
