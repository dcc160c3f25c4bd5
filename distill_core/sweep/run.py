"""The `sweep` task: plan the jobs, skip those already finished, run the rest (here one after another, or
as Ray tasks, see `ray.py`), then gather the cells into the tidy table and the study-style summaries.

A job that fails does not stop the sweep: the jobs that need it are skipped, everything else runs, and the
sweep then fails naming them; rerunning it (`--out` the same folder, or `resume`) retries only those.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..events import CancelToken
from ..files import write_atomic, write_json
from ..runs.store import Run
from . import table
from .config import SweepConfig, levels
from .schedule import JOB_TASKS, SweepJob, as_json, config_hash, finished, run_job, schedule


def run_locally(jobs: list[SweepJob], root: Path, results: dict, report, cancel: CancelToken, address: str = "") -> None:
    """Each job in plan order in this process; one whose needs did not finish is skipped."""
    for job in jobs:
        if job.key in results:
            continue
        missing = [k for k in job.needs if results[k]["status"] != "done"]
        outcome = ({"status": "skipped", "error": f"{missing[0]} did not finish"} if missing
                   else run_job(job, root, cancel))
        results[job.key] = outcome
        report(job, outcome)


def check_jobs(jobs: list[SweepJob]) -> None:
    """Every stage's and cell's settings, before the first job starts."""
    for job in jobs:
        JOB_TASKS[job.task].check(job.config)


def sweep(cfg: SweepConfig, run: Run, cancel: CancelToken) -> dict:
    t0 = time.perf_counter()
    root = run.path.resolve()
    jobs = schedule(cfg, root)
    check_jobs(jobs)
    by_key = {job.key: job for job in jobs}
    results = {job.key: {"status": "done", "summary": s}
               for job in jobs if (s := finished(root, job)) is not None}
    cells = [job for job in jobs if not job.stage]
    done_before = sum(1 for job in cells if job.key in results)
    run({"kind": "log", "message": f"{len(cells)} cells and {len(jobs) - len(cells)} shared stages in {root}; "
                                   f"{done_before} cells finished before. Rerun with --out {root} (or resume it) "
                                   "to carry on after a stop."})
    progress = {"done": len(results), "total": len(jobs)}

    def report(job: SweepJob, outcome: dict) -> None:
        progress["done"] += 1
        what = f"{job.key}: {outcome['status']}"
        if outcome["status"] == "done" and not job.stage:
            d = outcome["summary"]["distilled"]
            what += f", CA {100 * d['ca']:.1f}% ASR {100 * d['asr']:.1f}%"
        elif outcome["status"] != "done":
            what += f" ({outcome['error']})"
        run({"kind": "log", "level": "info" if outcome["status"] == "done" else "error", "message": what})
        run({"kind": "step", "phase": "sweep", "step": progress["done"], "total": progress["total"]})

    if cfg.ray:
        from .ray import run_on_ray as execute
    else:
        execute = run_locally
    execute(jobs, root, results, report, cancel, cfg.ray)

    done = [job for job in jobs if results[job.key]["status"] == "done"]
    rows = [table.cell_row(job.cell, results[job.key]["summary"], config_hash(job, by_key), job.key,
                           config=as_json(job.config), teacher=teacher_scores(job, results, by_key))
            for job in done if not job.stage]
    rows += [table.cell_row(teacher_cell(job, results[job.key]["summary"]), results[job.key]["summary"],
                            config_hash(job, by_key), job.key, encoder="teacher_scores", config=as_json(job.config))
             for job in done if job.task == "prepare" and job.config.score_before]  # the teacher alone
    files = write_tables(root, rows)
    failed = {k: r for k, r in results.items() if r["status"] != "done"}
    if failed:
        first = next(iter(failed.items()))
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs did not finish (first: {first[0]}: {first[1]['error']}); "
                           f"the tables hold the {len(rows)} finished cells, and a rerun retries only the others")
    return {"task": "sweep", "cells": len(cells), "rows": len(rows), "cells_done_before": done_before,
            "levels": levels(cfg),
            "files": files, "seconds": {"total": time.perf_counter() - t0}}


def teacher_scores(job: SweepJob, results: dict, by_key: dict) -> dict | None:
    """The figures of the teacher a cell learned from, scored alone by its stage (fine-tuned or pruned; an
    ensemble's teacher is not its fine-tuned member, so it gets none)."""
    return next((s["teacher_scores"] for k in job.needs if by_key[k].task == "prepare"
                 and by_key[k].config.teacher == job.config.teacher
                 and (s := results[k].get("summary") or {}).get("teacher_scores")), None)


def teacher_cell(job: SweepJob, summary: dict) -> dict:
    """The factors of a scored teacher's row: no student, loss or placement (it learns from none)."""
    return {"attack": summary["attack"], "downstream": job.config.downstream, "teacher": job.config.teacher,
            "student": "", "loss": "", "placement": "", "seed": job.config.seed}


def write_tables(root: Path, rows: list[dict]) -> dict[str, str]:
    """results.csv/json (one row per cell) and tables/*.csv + tables.md (the summaries); returns their paths."""
    files = {"results.csv": table.to_csv(rows, table.COLUMNS), "results.json": json.dumps(rows, indent=1)}
    tables = table.summary_tables(rows)
    files.update({f"tables/{name}.csv": table.to_csv(table.formatted(t)) for name, t in tables.items()})
    files["tables.md"] = table.markdown_all(tables)
    for name, text in files.items():
        write_atomic(root / name, text)
    write_json(root / "tables.json", tables)
    return {name: str(root / name) for name in [*files, "tables.json"]}
