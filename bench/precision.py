"""Does low precision cost accuracy? The demo pre-training in fp32, bf16 and (CUDA) fp16 with its gradient
scaler, same seed, same data.

Reports the downstream probe accuracy and wall time of each, so the speed-up is weighed against accuracy.
"""
from __future__ import annotations

import tempfile

from distill_core.device import cpu_has_bf16, resolve_device
from distill_core.tasks import make_config, run_task

COLUMNS = ["precision", "ca_simclr", "ca_random_init", "train_s", "speedup"]


def run(device: str = "auto", repeats: int = 1) -> list[dict]:
    dev = resolve_device(device)
    low = ["bf16", "fp16"] if dev.type == "cuda" else ["bf16"] if cpu_has_bf16() else []
    rows = []
    for precision in ["fp32", *low]:
        cfg = make_config("pretrain", "demo", {"precision": precision, "device": device})
        with tempfile.TemporaryDirectory() as out:
            _, s = run_task("pretrain", cfg, out=out)
        rows.append({"bench": "precision", "precision": precision, "ca_simclr": s["ca_simclr"],
                     "ca_random_init": s["ca_random_init"], "train_s": s["seconds"]["train"]})
    for r in rows:
        r["speedup"] = rows[0]["train_s"] / r["train_s"]
    return rows
