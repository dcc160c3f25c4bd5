"""The run store as rows and stories: what the app's pickers, comparison table and scatter plot show.

A *story* is one backdoor's life: the clean encoder (its CA and ASR-B), the poisoned one (BA, ASR) and, once
distilled, the purified one. An attack run holds the first two; a distillation or pipeline run all three.
"""
from __future__ import annotations

import time

ROLES = ("clean", "poisoned", "distilled")  # a story's encoders, in the order the story goes
ROLE_LABELS = {"clean": "clean", "poisoned": "poisoned", "distilled": "purified"}  # what a reader calls them


def headline(run: dict) -> dict:
    """The figures a run is judged by: the encoder it produced (fractions), or {} while unfinished."""
    s = run.get("summary") or {}
    for role in ("distilled", "poisoned"):
        if isinstance(s.get(role), dict):
            return s[role]
    if "ca_simclr" in s:  # a pre-training run
        return {"ca": s["ca_simclr"]}
    return {k: s[k] for k in ("ca", "asr") if k in s}


def row(run: dict) -> dict:
    """One flat row per run for the comparison table (figures in percent)."""
    cfg, s = run.get("config") or {}, run.get("summary") or {}
    fig = headline(run)
    pct = lambda v: None if v is None else round(100 * v, 1)
    return {
        "id": run["id"], "kind": run.get("kind", ""), "status": run.get("status", ""),
        "CA %": pct(fig.get("ca")), "ASR %": pct(fig.get("asr")),
        "clean CA %": pct((s.get("clean") or {}).get("ca")), "ASR-B %": pct((s.get("clean") or {}).get("asr")),
        "attack": s.get("attack") or cfg.get("attack", ""),
        **{k: s.get(k) or (cfg.get(k, "") if run.get("kind") in ("distill", "pipeline") else "")
           for k in ("teacher", "student", "loss")},
        "downstream": s.get("downstream") or cfg.get("downstream", ""),
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.get("created", 0))),
        "seconds": round((s.get("seconds") or {}).get("total", 0)) or None,
        "part of": run.get("parent", ""),
        "note": run.get("error") or ("pre-computed, shipped with the lab" if run.get("shipped") else ""),
    }


def stories(runs: list[dict]) -> list[dict]:
    """Finished runs that tell a story, each {"id", "kind", "label", role: {"ca", "asr"}...} for the roles it
    has; a pipeline's stage runs are left out (the pipeline tells the same story)."""
    out = []
    for run in runs:
        s = run.get("summary") or {}
        if run.get("status") != "done" or run.get("parent") or not isinstance(s.get("poisoned"), dict):
            continue
        roles = {r: s[r] for r in ROLES if isinstance(s.get(r), dict) and "asr" in s[r]}
        label = " / ".join(filter(None, (s.get("attack"), s.get("teacher"), s.get("student"), s.get("loss"))))
        label = (label or run["kind"]) + (" · pre-computed" if run.get("shipped") else "")
        out.append({"id": run["id"], "kind": run["kind"], "label": label, **roles})
    return out


def attack_runs(runs: list[dict]) -> list[dict]:
    """Finished runs whose folder holds a poisoned encoder a distillation can start from (attack runs,
    standalone or a pipeline's stage), newest first."""
    return [r for r in runs if r.get("kind") == "attack" and r.get("status") == "done"]


def describe(run: dict) -> str:
    """One line naming a run for pickers: what it is, its figures and when it started."""
    s, fig = run.get("summary") or {}, headline(run)
    what = " → ".join(filter(None, (s.get("attack") or run.get("kind"), s.get("target"))))
    figs = " · ".join(f"{name} {100 * fig[key]:.1f}%" for key, name in (("ca", "CA"), ("asr", "ASR")) if key in fig)
    when = time.strftime("%H:%M", time.localtime(run.get("created", 0)))
    if run.get("shipped"):
        return f"{what} · {figs} · pre-computed demo story"
    return f"{what} · {figs} · {when} ({run['id'][-4:]})" if figs else f"{what} · {when} ({run['id'][-4:]})"


def precomputed_note(run: dict) -> str:
    """The sentence every view of a shipped story shows: by which command and on which machine it was made
    ('' for the user's own runs)."""
    made = run.get("precomputed") or {}
    if not run.get("shipped") or not made:
        return ""
    return (f"Pre-computed story, shipped with the lab: made by `{made['command']}` on {made['machine']}, "
            f"{made['made']}.")
