"""Shared fixtures. Tests run on the CPU in fp32 unless they say otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs that tests start without an explicit directory go to a scratch store, never the checkout's runs/.
os.environ.setdefault("DISTILL_RUNS", tempfile.mkdtemp(prefix="distill-test-runs-"))

import pytest
import torch

from bench.app_server import CHROMIUM, CHROMIUM_FLAGS, streamlit_server  # noqa: F401  (shared with the tests)
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


def cli(*args, check=True):
    """`python -m distill_core ARGS` as a user runs it, in a real subprocess."""
    proc = subprocess.run([sys.executable, "-m", "distill_core", *args], cwd=ROOT, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def last_json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def demo_story(tmp_path_factory) -> tuple[Path, dict]:
    """`pipeline --preset demo` run once from the command line (BadEncoder, then the study's fine-tuned teacher,
    warm-up student and AT): the demo's attack targets and its defence targets are both read off this one story,
    as a class sees it. (folder, summary)"""
    out = tmp_path_factory.mktemp("demo") / "P"
    return out, last_json(cli("pipeline", "--preset", "demo", "--out", str(out), "--quiet"))


needs_chromium = pytest.mark.skipif(not CHROMIUM.is_file(),
                                    reason="Debian's chromium is not installed (.ci/run installs it)")


def run_tiny_sweep(store_root: Path) -> Path:
    """A real sweep of 4 cells (two losses under two placements) at a tiny size (about 10 s) in a run store, for
    the pages that show sweeps."""
    import json

    from distill_core.runs.store import RunStore
    from distill_core.tasks import make_config, run_task
    cfg = make_config("sweep", "demo", dict(
        device="cpu", attacks="badencoder", teachers="finetuned", students="warmup", losses="at,kd",
        placements="source,authors", seeds="0", attack_epochs=1, n_shadow=128, distill_epochs=1, teacher_epochs=1, warmup_epochs=1, n_clean=64,
        n_downstream_train=200, n_downstream_test=100,
        settings=json.dumps({"distill": {"batch_size": 32, "eval_every": 0}, "attack": {"eval_every": 0}})))
    path, _ = run_task("sweep", cfg, store=RunStore(store_root))
    return path
