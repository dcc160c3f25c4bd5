"""What a live view shows, derived from a run's events: where it is, how long is left, and its curves.

Events come from `events.jsonl` or a job's memory, each stamped with `t` (seconds). A run moves through
parts, each `(stage, phase)`: a pipeline's stages (`pretrain`, `attack`, `distill`) and a distillation's
phases (`teacher`, `warmup`, `distill`, ...); a plain attack or pre-training has one part.

A job with several parts first sends its plan, `{"kind": "plan", "parts": [{"part", "steps", "cost"}]}`, with
each part's steps and its cost per step in image passes (forward 1, forward and backward 3), so progress and
time left are for the whole job, and time left comes from this device's measured speed. At the demo's settings
the plan gives the attack 16% of the work, the teacher 4%, the warm-up 8% and the distillation 72%; the laptop
profile measured 16, 4, 8 and 73% of the training time.
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
    done: int           # of the current part
    total: int
    seconds_left: float | None   # of the whole job
    fraction: float              # of the whole job: its plan's work done, else the current part's share done
    place: tuple[int, int] | None = None   # (n, of): the current part's place in the job's plan


def job_plan(events: list[dict]) -> list[dict] | None:
    """The job's plan: its first plan event (a stage's own plan, forwarded inside a pipeline, has a stage)."""
    return next((e["parts"] for e in events if e.get("kind") == "plan" and "stage" not in e), None)


def _counted(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("kind") in ("step", "epoch") and (e.get("total") or e.get("epochs"))]


def _done(event: dict) -> tuple[int, int]:
    if event["kind"] == "step":
        return event["step"], event["total"]
    return event.get("epoch", 0), event["epochs"]


def progress(events: list[dict]) -> Progress | None:
    """Progress through the current part and the whole job; None before the first step."""
    counted = _counted(events)
    if not counted:
        return None
    last, plan = counted[-1], job_plan(events)
    labels = [p["part"] for p in plan or ()]
    if part(last) in labels:
        return _planned(counted, plan, labels)
    label, (done, total) = part(last), _done(last)
    same = [e for e in counted if e["kind"] == last["kind"] and part(e) == label and ("step" in e or "epoch" in e)]
    first = same[0] if same else last
    first_done = _done(first)[0]
    rate = (done - first_done) / (last["t"] - first["t"]) if last["t"] > first["t"] and done > first_done else 0
    return Progress(label, last["kind"], done, total, (total - done) / rate if rate else None,
                    min(1.0, done / total) if total else 0.0)


def _planned(counted: list[dict], plan: list[dict], labels: list[str]) -> Progress:
    """Work done is the parts before the current one plus the current one's share; time left is the work to go
    at the rate measured since the first step (parts run with no steps, say reused ones, count as no time)."""
    work = [p["steps"] * p["cost"] for p in plan]
    ours = [e for e in counted if part(e) in labels]

    def work_done(e: dict) -> float:
        i, (done, total) = labels.index(part(e)), _done(e)
        return sum(work[:i]) + work[i] * min(1.0, done / total if total else 0.0)

    first, last = ours[0], ours[-1]
    seen = {labels.index(part(e)) for e in ours}
    start, now = labels.index(part(first)), labels.index(part(last))
    skipped = sum(work[j] for j in range(start + 1, now) if j not in seen)
    measured = work_done(last) - work_done(first) - skipped
    elapsed = last["t"] - first["t"]
    left = sum(work) - work_done(last)
    seconds_left = left * elapsed / measured if measured > 0 and elapsed > 0 else None
    done, total = _done(last)
    return Progress(part(last), last["kind"], done, total, seconds_left, work_done(last) / (sum(work) or 1),
                    (now + 1, len(plan)))


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
