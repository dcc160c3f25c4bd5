"""Run benchmarks, print a table per benchmark, and write all rows to bench/results/<time>.json."""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from . import attack, attribution, augment, compile, distill, evaluate, pipeline, precision, simclr
from .timing import table

BENCHES = {"distill": distill, "attack": attack, "simclr": simclr, "augment": augment, "evaluate": evaluate,
           "pipeline": pipeline, "compile": compile, "precision": precision, "inspect": attribution}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", default=list(BENCHES), help=f"benchmarks to run: {', '.join(BENCHES)}")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
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
