"""What a live view shows, derived from a run's events: where it is, how long is left, and its curves.

Events come from `events.jsonl` or a job's memory, each stamped with `t` (seconds). A run moves through
parts, each `(stage, phase)`: a pipeline's stages (`pretrain`, `attack`, `distill`) and a distillation's
phases (`teacher`, `warmup`, `distill`, ...); a plain attack or pre-training has one part.
"""
from __future__ import annotations

from dataclasses import dataclass

QUALITY = ("ca", "asr", "asr_all")  # figures of a quick evaluation (fractions)
NOT_CURVES = {"kind", "t", "stage", "phase", "epoch", "epochs", "step", "total", "kept", "message", "level",
              "traceback", "images_per_s"}


def part(event: dict) -> str:
    """'stage · phase' label of the part an event belongs to ('' for a one-part run)."""
    return " · ".join(p for p in (event.get("stage"), event.get("phase")) if p)


@dataclass
class Progress:
    part: str
    unit: str           # "step" or "epoch"
    done: int
    total: int
    seconds_left: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def progress(events: list[dict]) -> Progress | None:
    """Progress through the current part; time left from its step rate so far (None until measurable)."""
    counted = [e for e in events if e.get("kind") in ("step", "epoch") and (e.get("total") or e.get("epochs"))]
    if not counted:
        return None
    last = counted[-1]
    label = part(last)
    if last["kind"] == "step":
        done, total = last["step"], last["total"]
        same = [e for e in counted if e["kind"] == "step" and part(e) == label]
    else:
        done, total = last.get("epoch", 0), last["epochs"]
        same = [e for e in counted if e["kind"] == "epoch" and part(e) == label and "epoch" in e]
    first = same[0] if same else last
    first_done = first.get("step", first.get("epoch", 0))
    rate = (done - first_done) / (last["t"] - first["t"]) if last["t"] > first["t"] and done > first_done else 0
    return Progress(label, last["kind"], done, total, (total - done) / rate if rate else None)


def curves(events: list[dict]) -> dict[str, list[dict]]:
    """Per part, one row per finished epoch: its epoch, the means of its loss terms and, where it was
    evaluated, CA/ASR in percent."""
    out: dict[str, list[dict]] = {}
    for e in events:
        if e.get("kind") != "epoch" or "epoch" not in e and not any(q in e for q in QUALITY):
            continue
        row = {"epoch": e.get("epoch", 0)}
        for k, v in e.items():
            if k in NOT_CURVES or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            row[k] = 100 * v if k in QUALITY else v
        out.setdefault(part(e), []).append(row)
    return out


def messages(events: list[dict]) -> list[str]:
    """The runs' log lines, in order (what a CLI user would read on stderr)."""
    return [e["message"] for e in events if e.get("kind") == "log" and e.get("message")]
