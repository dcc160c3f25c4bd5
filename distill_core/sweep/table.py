"""A sweep's results as tables: one tidy row per cell, and mean ± std over seeds per factor, laid out as the
study lays out its tables (a factor's choices down the side, attack/downstream CA and ASR across).

Figures are percentages. `CA`/`ASR`/`ASR-all` are the purified encoder's; the poisoned encoder's `BA` and
ASR and the clean encoder's CA and ASR-B (the floor) come from the attack stage the cell started from. ASR
leaves the target class's own test images out (backdoor toolkits' convention); ASR-all counts them
(BadEncoder's code). When a table varies one factor, the other two stay at the study's recommended parts
(fine-tuned teacher, warm-up student, AT loss) where the grid has them, else the table pools over them, and the
placement at the sweep's first one. A sweep of several placements also gets `by_placement`: the losses ranked under
each side by side. `defence` names the cells that are a defence of their own (fine-tuning, fine-pruning, NAD,
MIMIC; `baselines.py`).
"""
from __future__ import annotations

import csv
import io
import statistics
from itertools import groupby

from ..distill import LOSSES, RECOMMENDED
from ..distill.baselines import defence_name

FIGURES = {"ca": "CA", "asr": "ASR", "asr_all": "ASR-all"}   # the purified encoder's, by row key
BEFORE = {"clean_ca": ("clean", "ca"), "asr_b": ("clean", "asr"), "ba": ("poisoned", "ca"),
          "asr_before": ("poisoned", "asr")}
TEACHER = {"teacher_ca": "ca", "teacher_asr": "asr"}  # the cell's teacher scored alone: fine-tuning at its budget
COLUMNS = ["attack", "downstream", "target", "teacher", "student", "loss", "placement", "defence", "seed", *BEFORE,
           *TEACHER, *FIGURES, "seconds", "distill_seconds", "config_hash", "run"]
TABLE_FACTORS = ("teacher", "student", "loss")


def pct(v):
    return None if v is None else round(100 * v, 2)


def cell_row(cell: dict, summary: dict, config_hash: str, run: str, encoder: str = "distilled",
             config: dict | None = None, teacher: dict | None = None) -> dict:
    """A row of figures: the run's purified encoder's, or (`teacher_scores`) its teacher's; beside them the
    teacher's own figures (`teacher`, scored by its stage), and the named defence the cell is (by its config)."""
    seconds = summary.get("seconds") or {}
    before = {k: pct((summary.get(role) or {}).get(fig)) for k, (role, fig) in BEFORE.items()}
    before.update({k: pct((teacher or {}).get(fig)) for k, fig in TEACHER.items()})
    return {**cell, "defence": defence_name(cell, encoder, config), "target": summary.get("target"), **before,
            **{k: pct(summary[encoder].get(k)) for k in FIGURES},
            "seconds": round(seconds.get("total", 0), 2), "distill_seconds": round(seconds.get("distill", 0), 2),
            "config_hash": config_hash, "run": run}


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or (list(rows[0]) if rows else []))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def mean_std(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": round(statistics.fmean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0, "n": len(values)}


def fmt(stat: dict) -> str:
    if stat["mean"] is None:
        return "—"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def over_seeds(rows: list[dict], metric: str) -> dict:
    """Mean ± std over seeds of `metric`, each seed's value first averaged over the rows it has (pooling)."""
    by_seed = sorted(rows, key=lambda r: r["seed"])
    per_seed = [statistics.fmean(r[metric] for r in group)
                for _, group in groupby(by_seed, key=lambda r: r["seed"])]
    return mean_std(per_seed)


def held_choices(rows: list[dict]) -> dict:
    """What a table holds a factor it does not vary at: the study's choice, and the sweep's first placement."""
    return {**RECOMMENDED, "placement": next(iter(levels_of(rows, "placement")), None)}


def held(rows: list[dict], varied: tuple[str, ...]) -> list[dict]:
    """Rows with the factors not in `varied` at their held choice, where the grid has that choice; a loss without
    a teacher term (fine-tuning) is the same under every placement, so it stays whatever the placement."""
    for factor, choice in held_choices(rows).items():
        if factor not in varied and any(r.get(factor) == choice for r in rows):
            rows = [r for r in rows if at(r, factor, choice)]
    return rows


def at(row: dict, factor: str, level) -> bool:
    """Whether a row counts at this level of a factor: one with nothing placed (fine-tuning, a pruned teacher
    alone) counts at every placement."""
    if factor == "placement" and not getattr(LOSSES.get(row["loss"]), "build", None):
        return True
    return row.get(factor) == level


def attack_downstreams(rows: list[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["attack"], r["downstream"]) for r in rows))


def levels_of(rows: list[dict], factor: str) -> list:
    """The factor's values in order of appearance; a blank is none (a pruned teacher alone has no student, loss or
    placement; results from before placements have no placement)."""
    return list(dict.fromkeys(r[factor] for r in rows if r.get(factor) not in (None, "")))


def by_story(chosen: list[dict], stories: list[tuple[str, str]], prefix: str = "", metrics=("ca", "asr")) -> dict:
    """Table columns: each attack/downstream's metrics of these rows, mean ± std over seeds."""
    out = {}
    for attack, ds in stories:
        story = [r for r in chosen if (r["attack"], r["downstream"]) == (attack, ds)]
        for m in metrics:
            out[f"{prefix}{attack}/{ds} {FIGURES[m]}"] = over_seeds(story, m) if story else mean_std([])
    return out


def factor_table(rows: list[dict], factor: str, metrics=("ca", "asr")) -> list[dict]:
    """One row per choice of `factor`; per attack/downstream, each metric's mean ± std over seeds."""
    rows = held(rows, (factor,))
    return [{factor: level, **by_story([r for r in rows if r[factor] == level], attack_downstreams(rows),
                                       metrics=metrics)} for level in levels_of(rows, factor)]


def placement_table(rows: list[dict]) -> list[dict]:
    """The losses side by side under each placement: the loss's rank under each (1 = lowest ASR averaged over
    the attacks and downstreams), then per placement each attack/downstream's CA and ASR (mean ± std over seeds)."""
    rows = held(rows, ("loss", "placement"))
    losses, placements = levels_of(rows, "loss"), levels_of(rows, "placement")
    under = {(loss, p): [r for r in rows if r["loss"] == loss and at(r, "placement", p)]
             for loss in losses for p in placements}
    out = [{"loss": loss} for loss in losses]
    for p in placements:
        asr = {loss: over_seeds(under[loss, p], "asr")["mean"] if under[loss, p] else None for loss in losses}
        ranked = sorted(losses, key=lambda loss: float("inf") if asr[loss] is None else asr[loss])
        for line in out:
            line[f"{p} rank"] = ranked.index(line["loss"]) + 1
    for line in out:
        for p in placements:
            line.update(by_story(under[line["loss"], p], attack_downstreams(rows), prefix=f"{p} · "))
    return out


def defences_table(rows: list[dict]) -> list[dict]:
    """The named defences (fine-tuning, fine-pruning, NAD, MIMIC) beside the study's recommendation, on the same clean
    data and evaluator: per attack/downstream, CA and ASR mean ± std over seeds."""
    study = [r for r in held(rows, ()) if all(r[f] == c for f, c in RECOMMENDED.items())]
    named = {"distillation (study's choice)": study,
             **{name: [r for r in held(rows, ("teacher", "student", "loss")) if r.get("defence") == name]
                for name in dict.fromkeys(r.get("defence") for r in rows) if name}}
    return [{"defence": name, **by_story(chosen, attack_downstreams(rows))} for name, chosen in named.items() if chosen]


def cells_table(rows: list[dict]) -> list[dict]:
    """Every combination with its figures' mean ± std over seeds."""
    keys = ("attack", "downstream", "teacher", "student", "loss", "placement")
    out = []
    for combo in dict.fromkeys(tuple(r.get(k) for k in keys) for r in rows):
        chosen = [r for r in rows if tuple(r.get(k) for k in keys) == combo]
        out.append({**dict(zip(keys, combo)), **{FIGURES[m]: over_seeds(chosen, m) for m in FIGURES}})
    return out


def attacks_table(rows: list[dict]) -> list[dict]:
    """The starting point of each story: the clean encoder's CA and ASR-B, the poisoned one's BA and ASR."""
    out = []
    for attack, ds in attack_downstreams(rows):
        first = next(r for r in rows if r["attack"] == attack and r["downstream"] == ds)
        out.append({"attack": attack, "downstream": ds, "target": first["target"],
                    **{k: first[k] for k in BEFORE}})
    return out


def heatmap(rows: list[dict], row_factor: str, col_factor: str, metric: str, attack: str, ds: str):
    """(row levels, column levels, matrix of mean-over-seeds values or None) for one attack/downstream."""
    rows = held([r for r in rows if r["attack"] == attack and r["downstream"] == ds], (row_factor, col_factor))
    ys, xs = levels_of(rows, row_factor), levels_of(rows, col_factor)
    matrix = [[over_seeds(chosen, metric)["mean"] if (chosen := [r for r in rows if at(r, row_factor, y)
                                                                 and at(r, col_factor, x)]) else None
               for x in xs] for y in ys]
    return ys, xs, matrix


def formatted(table: list[dict]) -> list[dict]:
    """A table with its mean ± std cells as text (for CSV and Markdown)."""
    return [{k: fmt(v) if isinstance(v, dict) else v for k, v in line.items()} for line in table]


def markdown(table: list[dict]) -> str:
    table = formatted(table)
    if not table:
        return ""
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if line[h] is None else str(line[h]) for h in head) + " |" for line in table]
    return "\n".join(lines)


def markdown_all(tables: dict[str, list[dict]]) -> str:
    """Named tables as one Markdown document, a section each."""
    return "\n\n".join(f"## {name}\n\n{markdown(t)}" for name, t in tables.items()) + "\n"


def summary_tables(rows: list[dict]) -> dict[str, list[dict]]:
    """The study-style tables of a sweep's rows, by name."""
    tables = {"attacks": attacks_table(rows), "cells": cells_table(rows)}
    tables.update({f"by_{factor}": factor_table(rows, factor) for factor in TABLE_FACTORS})
    if any(r.get("defence") for r in rows):
        tables["defences"] = defences_table(rows)
    if len(levels_of(rows, "placement")) > 1:
        tables["by_placement"] = placement_table(rows)
    return tables
