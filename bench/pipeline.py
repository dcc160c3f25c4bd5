"""The demo story end to end, as a new user runs it: `python -m distill_core pipeline --preset demo` in a fresh
process with an empty run store, timed from the command's start (imports included) to its exit.
Reports each phase's wall time from the run's summaries and the process's peak resident memory.
Targets (2-core CPU): <= 120 s wall, peak RSS <= 2.5 GB.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ["phase", "seconds", "share", "peak_rss_gb"]


def run(device: str = "auto", repeats: int = 1) -> list[dict]:
    return story_rows("demo pipeline", ["--preset", "demo"], device)


def story_rows(bench: str, flags: list[str], device: str) -> list[dict]:
    """`pipeline FLAGS` in a fresh process: each phase's wall time, the total and the peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "story"
        env = {**os.environ, "DISTILL_RUNS": tmp}
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "distill_core", "pipeline", *flags, "--device", device,
                               "--out", str(out)], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{bench} failed:\n{done.stderr[-3000:]}")
        wall = time.perf_counter() - t
        rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
        summary = json.loads((out / "summary.json").read_text())
        stages = {s: json.loads((out / s / "summary.json").read_text())["seconds"] for s in summary["runs"]}
    phases = {"start-up (imports, data)": wall - summary["seconds"]["total"]}
    for stage, seconds in stages.items():
        phases.update({f"{stage}: {k}": v for k, v in seconds.items() if k != "total"})
    rows = [{"bench": bench, "phase": k, "seconds": v, "share": v / wall, "peak_rss_gb": ""} for k, v in phases.items()]
    return rows + [{"bench": bench, "phase": "total", "seconds": wall, "share": 1.0, "peak_rss_gb": rss_gb,
                    "poisoned": summary["poisoned"], "distilled": summary["distilled"]}]
