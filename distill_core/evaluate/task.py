"""The `evaluate` task: score a saved encoder on a downstream task, with a trigger for ASR.

With `clean_encoder` given, the clean encoder is scored with the same probe recipe and trigger, giving
CA (clean) and ASR-B next to the evaluated encoder's BA and ASR.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..config import DownstreamConfig, RuntimeConfig, check_target, check_trigger, opt, validate_common
from ..data.datasets import default_target, report_skipped
from ..data.triggers import TRIGGER_HELP, make_trigger
from ..device import Runtime
from ..models.checkpoint import load_encoder
from ..presets import DEMO_ENCODER
from ..events import CancelToken
from ..runs.registry import Task
from ..runs.store import Run
from .downstream import Downstream

@dataclass
class EvaluateConfig(RuntimeConfig, DownstreamConfig):
    encoder: str = opt("", "encoder to score: .safetensors (with its .json sidecar) or a .pt/.pth state dict; "
                           "empty = the shipped demo encoder")
    clean_encoder: str = opt("", "optional clean encoder: adds its CA and ASR-B for comparison")
    trigger: str = opt("white", TRIGGER_HELP)
    target: str = opt("", "target class, by name or index (empty = the downstream's usual target)")


def evaluate(cfg: EvaluateConfig, run: Run, cancel: CancelToken) -> dict:
    validate_common(cfg)
    check_target(cfg.target or default_target(cfg.downstream) or "", cfg.downstream)
    check_trigger(cfg.trigger, cfg.image_size)
    t0 = time.perf_counter()
    rt = Runtime.create(cfg.device, cfg.precision)
    path = cfg.encoder or str(DEMO_ENCODER)
    encoder, _, meta = load_encoder(path)
    cfg = replace(cfg, image_size=meta.get("input_size", cfg.image_size))
    target = cfg.target or default_target(cfg.downstream)
    trigger = make_trigger(cfg.trigger, cfg.image_size) if target is not None else None
    evaluator = Downstream(cfg, rt, trigger, target)
    report_skipped(run, evaluator.train, evaluator.test)
    target_name = evaluator.classes[evaluator.target] if evaluator.target is not None else None
    run({"kind": "log", "message": f"scoring {path} on {cfg.downstream} ({len(evaluator.test)} test images, "
                                   f"target {target_name})"})
    cancel.check()
    scored = evaluator.score(rt.module(encoder))
    summary = {"task": "evaluate", "encoder": str(path), "downstream": cfg.downstream, "probe": cfg.probe,
               "trigger": cfg.trigger, "target": target_name,
               **{k: v for k, v in scored.items() if k != "triggered_pred"}}
    if cfg.clean_encoder:
        cancel.check()
        clean, _, _ = load_encoder(cfg.clean_encoder)
        ref = evaluator.score(rt.module(clean))
        summary["clean"] = {"ca": ref["ca"], "asr_b": ref.get("asr"), "asr_all_b": ref.get("asr_all")}
    summary["seconds"] = {"total": time.perf_counter() - t0}
    return summary


EVALUATE_TASK = Task("evaluate", EvaluateConfig, evaluate, "Score a saved encoder downstream: CA, ASR, ASR-all "
                     "(and ASR-B).")
