"""Run benchmarks, print a table per benchmark, and write all rows to bench/results/<time>.json."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from distill_core.cpu_kernels import LAPTOP_ENV

from . import (attack, attribution, augment, compile, demo_click, distill, evaluate, narrow, pages, pipeline,
               precision, real_story, simclr)
from .timing import table

BENCHES = {"distill": distill, "attack": attack, "simclr": simclr, "augment": augment, "evaluate": evaluate,
           "pipeline": pipeline, "compile": compile, "precision": precision, "inspect": attribution,
           "narrow": narrow, "pages": pages, "demo-click": demo_click, "real-story": real_story}
# run when named: pages and the click need Chromium, the real story the CIFAR-10 sample
NAMED_ONLY = {"pages", "demo-click", "real-story"}
# laptop: AVX2 kernels and fp32, as many classroom laptops run; native: no limit (None unsets a variable)
PROFILES = {"native": dict.fromkeys(LAPTOP_ENV), "laptop": LAPTOP_ENV}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", default=[n for n in BENCHES if n not in NAMED_ONLY],
                   help=f"benchmarks to run: {', '.join(BENCHES)} (all but {', '.join(NAMED_ONLY)} by default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", choices=PROFILES, default="native",
                   help="native: what this machine has; laptop: AVX2 kernels and fp32 on any x86 CPU")
    args = p.parse_args()
    env = PROFILES[args.profile]
    if any(os.environ.get(k) != v for k, v in env.items()):  # torch reads them at start-up: start again with them
        os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]],
                  {k: v for k, v in {**os.environ, **env}.items() if v is not None})
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                           "profile": args.profile, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                           "torch": torch.__version__,
                           "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
               "rows": []}
    for name in args.names:
        mod = BENCHES[name]
        rows = mod.run(args.device, args.repeats)
        print(f"\n== {name}: {mod.__doc__.strip().splitlines()[0]}\n{table(rows, mod.COLUMNS)}", flush=True)
        results["rows"] += rows
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
