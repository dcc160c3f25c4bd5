"""A sweep's heatmaps as static figures (PNG or SVG bytes, for the app's downloads and for papers): one
metric over teacher x loss or student x loss for one attack/downstream, the study's recommended cell
framed, and loss x placement when the sweep has several placements (each loss's figures under each, side by
side). Matplotlib draws off-screen (Agg), so no display is needed.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from . import table
from ..distill import RECOMMENDED

PAIRS = (("teacher", "loss"), ("student", "loss"))   # the study's two views
PLACEMENT_PAIR = ("loss", "placement")
METRICS = {"asr": "ASR (%)", "ca": "CA (%)"}


def pairs(rows: list[dict]) -> tuple[tuple[str, str], ...]:
    """The heatmaps a sweep's rows make: the study's two, and the placements side by side when there are several."""
    return PAIRS + ((PLACEMENT_PAIR,) if len(table.levels_of(rows, "placement")) > 1 else ())


def load_results(source: str | Path | bytes, name: str = "") -> list[dict]:
    """A sweep's tidy rows from its folder, its results.json/.csv path, or an uploaded file's bytes."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        path = path / "results.json" if path.is_dir() else path
        name, source = path.name, path.read_bytes()
    what = name or "the file"
    try:
        text = source.decode("utf-8")
        if name.endswith(".csv"):
            numbers = set(table.BEFORE) | set(table.TEACHER) | set(table.FIGURES) | {"seed", "seconds", "distill_seconds"}
            number = lambda v: None if v in ("", None) else float(v)  # an empty cell: not measured
            rows = [{k: number(v) if k in numbers else v for k, v in r.items()}
                    for r in csv.DictReader(io.StringIO(text))]
        else:
            rows = json.loads(text)
    except (UnicodeDecodeError, ValueError, csv.Error) as e:
        raise ValueError(f"{what} is not a sweep's results table ({e})") from None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{what} is not a sweep's results table: it has no rows")
    missing = {"attack", "downstream", "teacher", "student", "loss", "seed", "ca", "asr"} - set(rows[0])
    if missing:
        raise ValueError(f"{what} is not a sweep's results table: it has no {', '.join(sorted(missing))} column")
    return rows


def heatmap_figure(rows: list[dict], row_factor: str, col_factor: str, metric: str, attack: str, ds: str):
    """A matplotlib Figure: mean over seeds of `metric`, a cell per (row, column) choice, values written in."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    ys, xs, m = table.heatmap(rows, row_factor, col_factor, metric, attack, ds)
    fig = Figure(figsize=(1.1 * len(xs) + 2.4, 0.55 * len(ys) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    values = [[float("nan") if v is None else v for v in line] for line in m]
    cmap = "Reds" if metric.startswith("asr") else "Greens"
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i, line in enumerate(m):
        for j, v in enumerate(line):
            if v is not None:
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=9,
                        color="white" if v > 60 else "black")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(col_factor)
    ax.set_ylabel(row_factor)
    chosen = [r for r in rows if r["attack"] == attack and r["downstream"] == ds]
    held = {f: c for f, c in table.held_choices(chosen).items() if f not in (row_factor, col_factor)
            and (f in RECOMMENDED or len(table.levels_of(chosen, f)) > 1)}  # the placement when there are several
    held = ", ".join(f"{f}: {c if any(r.get(f) == c for r in chosen) else 'pooled'}" for f, c in held.items())
    ax.set_title(f"{METRICS.get(metric, metric)} · {attack} → {ds}\n{held}", fontsize=10)  # held: its own line
    if RECOMMENDED.get(row_factor) in ys and RECOMMENDED.get(col_factor) in xs:  # the study's recommended parts
        i, j = ys.index(RECOMMENDED[row_factor]), xs.index(RECOMMENDED[col_factor])
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#1f77b4", linewidth=2.5))
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def export(fig, fmt: str) -> bytes:
    """The figure as PNG (150 dpi) or SVG bytes."""
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=150)
    return out.getvalue()
