"""A sweep's results as tables: one tidy row per cell, and mean ± std over seeds per factor, laid out as the
study lays out its tables (a factor's choices down the side, attack/downstream CA and ASR across).

Figures are percentages. `CA`/`ASR`/`ASR-all` are the purified encoder's; the poisoned encoder's `BA` and
ASR and the clean encoder's CA and ASR-B (the floor) come from the attack stage the cell started from. ASR
leaves the target class's own test images out (backdoor toolkits' convention); ASR-all counts them
(BadEncoder's code). When a table varies one factor, the other two stay at the study's recommended parts
(fine-tuned teacher, warm-up student, AT loss) where the grid has them, else the table pools over them.
`defence` names the cells that are a defence of their own (fine-tuning, NAD; `baselines.py`).
"""
from __future__ import annotations

import csv
import io
import statistics
from itertools import groupby

from ..distill import RECOMMENDED
from ..distill.baselines import defence_name

FIGURES = {"ca": "CA", "asr": "ASR", "asr_all": "ASR-all"}   # the purified encoder's, by row key
BEFORE = {"clean_ca": ("clean", "ca"), "asr_b": ("clean", "asr"), "ba": ("poisoned", "ca"),
          "asr_before": ("poisoned", "asr")}
COLUMNS = ["attack", "downstream", "target", "teacher", "student", "loss", "defence", "seed", *BEFORE, *FIGURES,
           "seconds", "distill_seconds", "config_hash", "run"]
TABLE_FACTORS = ("teacher", "student", "loss")


def pct(v):
    return None if v is None else round(100 * v, 2)


def cell_row(cell: dict, summary: dict, config_hash: str, run: str) -> dict:
    seconds = summary.get("seconds") or {}
    before = {k: pct((summary.get(role) or {}).get(fig)) for k, (role, fig) in BEFORE.items()}
    return {**cell, "defence": defence_name(cell), "target": summary.get("target"), **before,
            **{k: pct(summary["distilled"].get(k)) for k in FIGURES},
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


def held(rows: list[dict], varied: tuple[str, ...]) -> list[dict]:
    """Rows with the factors not in `varied` at the study's choice, where the grid has that choice."""
    for factor, choice in RECOMMENDED.items():
        if factor not in varied and any(r[factor] == choice for r in rows):
            rows = [r for r in rows if r[factor] == choice]
    return rows


def attack_downstreams(rows: list[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["attack"], r["downstream"]) for r in rows))


def levels_of(rows: list[dict], factor: str) -> list:
    return list(dict.fromkeys(r[factor] for r in rows))


def factor_table(rows: list[dict], factor: str, metrics=("ca", "asr")) -> list[dict]:
    """One row per choice of `factor`; per attack/downstream, each metric's mean ± std over seeds."""
    rows = held(rows, (factor,))
    out = []
    for level in levels_of(rows, factor):
        line = {factor: level}
        for attack, ds in attack_downstreams(rows):
            chosen = [r for r in rows if r[factor] == level and r["attack"] == attack and r["downstream"] == ds]
            for m in metrics:
                line[f"{attack}/{ds} {FIGURES[m]}"] = over_seeds(chosen, m) if chosen else mean_std([])
        out.append(line)
    return out


def cells_table(rows: list[dict]) -> list[dict]:
    """Every combination with its figures' mean ± std over seeds."""
    keys = ("attack", "downstream", "teacher", "student", "loss")
    out = []
    for combo in dict.fromkeys(tuple(r[k] for k in keys) for r in rows):
        chosen = [r for r in rows if tuple(r[k] for k in keys) == combo]
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
    matrix = [[over_seeds(chosen, metric)["mean"] if (chosen := [r for r in rows if r[row_factor] == y
                                                                 and r[col_factor] == x]) else None
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
    return tables
