"""A sweep's schedule: its jobs in order, the shared stages (one clean encoder, one poisoned encoder per attack
and target, one fine-tuned or pruned teacher per poisoned encoder and seed, one warm-up student per seed), then one
distillation per cell, each naming the jobs it needs. Each job is a task run in its own folder of the
sweep's; a job is finished when its folder holds a `done` run of exactly its config, so a rerun skips it,
and an unfinished one is cleared and starts over.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

from ..distill import LOSSES, PREPARE_TASK, TEACHERS
from ..pipeline import STAGES, stage_config
from ..presets import preset_encoder
from ..events import CancelToken
from ..runs.registry import TaskFailed, run_task
from ..runs.store import load_run
from .config import FACTORS, SweepConfig, levels, split_level, stage_settings

JOB_TASKS = {**STAGES, PREPARE_TASK.name: PREPARE_TASK}
PREPARED = "prepared"  # the sweep's `reuse` folder: kept teachers and warm-up students


@dataclass(frozen=True)
class SweepJob:
    key: str                    # its folder, relative to the sweep's
    task: str                   # pretrain | attack | prepare | distill
    config: object
    needs: tuple[str, ...] = ()
    cell: dict | None = None    # a cell's factor values

    @property
    def stage(self) -> bool:
        return self.cell is None


def slug(name: str) -> str:
    """A dataset name as part of a folder name (folder:PATH datasets hold slashes)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_")[-40:] or "data"


def teacher_stage(teacher: str) -> str | None:
    """The kept SimCLR run a teacher is built from, as its entry says (none: the poisoned encoder as it is)."""
    return TEACHERS[teacher].kept or None


def schedule(cfg: SweepConfig, root: Path) -> list[SweepJob]:
    root, lv, settings = Path(root).resolve(), levels(cfg), stage_settings(cfg)
    jobs: list[SweepJob] = []

    def add(job: SweepJob) -> str:
        jobs.append(job)
        return job.key

    clean, needs_clean = cfg.encoder or preset_encoder(cfg.preset, cfg.pretrain_data), ()
    if not clean:
        pretrain = stage_config(cfg, "pretrain", downstream=lv["downstream"][0], **settings.get("pretrain", {}))
        needs_clean = (add(SweepJob("stages/pretrain", "pretrain", pretrain)),)
        clean = root / needs_clean[0] / "encoder.safetensors"
    attacks = {}
    for attack, ds in product(lv["attack"], lv["downstream"]):
        extra = {**settings.get("attack", {}), **settings.get(f"attack.{attack}", {})}
        attacks[attack, ds] = add(SweepJob(f"stages/attack-{attack}-{slug(ds)}", "attack", stage_config(
            cfg, "attack", encoder=str(clean), attack=attack, downstream=ds, **extra), needs_clean))

    def distill(attack: str, ds: str, **extra):
        return stage_config(cfg, "distill", encoder=str(root / attacks[attack, ds]), downstream=ds,
                            reuse=str(root / PREPARED),
                            **{"score_before": False, **settings.get("distill", {}), **extra})

    first = next(iter(attacks))
    warmups = {seed: add(SweepJob(f"stages/warmup-s{seed}", "prepare", distill(*first, teacher="poisoned",
                                                                          student="warmup", seed=seed), (attacks[first],)))
               for seed in lv["seed"] if "warmup" in lv["student"]}  # a new student is the same whatever it meets
    with_teacher = any(LOSSES[loss].build for loss in lv["loss"])
    kept = sorted({teacher_stage(t) for t in lv["teacher"]} - {None}) if with_teacher else []
    teachers = {(name, a, ds, seed): add(SweepJob(f"stages/{name}-{a}-{slug(ds)}-s{seed}", "prepare", distill(
                    a, ds, teacher=name, student="poisoned-init", seed=seed, score_before=True),
                    (attacks[a, ds],)))  # scored: fine-tuning and fine-pruning alone are defences of their own
                for (a, ds), seed, name in product(attacks, lv["seed"], kept)}
    for values in product(*lv.values()):
        cell = dict(zip(FACTORS, values))
        a, ds, teacher, student, loss, level, seed = values
        if not LOSSES[loss].build and level != lv["placement"][0]:
            continue  # no teacher term, nothing placed: one run, under the first placement
        placement, calibrate = split_level(level)
        needs = [attacks[a, ds]]
        if LOSSES[loss].build and teacher_stage(teacher):
            needs.append(teachers[teacher_stage(teacher), a, ds, seed])
        if student == "warmup":
            needs.append(warmups[seed])
        add(SweepJob(f"cells/{a}-{slug(ds)}-{teacher}-{student}-{loss}-{level}-s{seed}", "distill",
                distill(a, ds, teacher=teacher, student=student, loss=loss, seed=seed, placement=placement,
                        calibrate=calibrate and bool(LOSSES[loss].build)),  # finetune-only has nothing to scale
                tuple(needs), cell))
    return jobs


def as_json(config) -> dict:
    return json.loads(json.dumps(asdict(config)))


def config_hash(job: SweepJob, jobs: dict[str, SweepJob]) -> str:
    """A short hash of what a cell's result depends on: its settings and those of the stages it needs
    (folders left out, so two sweeps of the same settings share hashes)."""
    paths = ("encoder", "reuse", "data_root")
    settings = [{k: v for k, v in as_json(j.config).items() if k not in paths}
                for j in [job, *(jobs[k] for k in job.needs)]]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def finished(root: Path, job: SweepJob) -> dict | None:
    """The summary of the job's earlier run when it finished with exactly this config, else None."""
    try:
        rec = load_run(Path(root) / job.key)
    except (OSError, ValueError):
        return None
    return rec["summary"] if rec["status"] == "done" and rec["config"] == as_json(job.config) else None


def run_job(job: SweepJob, root: Path, cancel: CancelToken | None = None) -> dict:
    """Run one job into its folder (cleared first: an unfinished job starts over); {"status", "summary"|"error"}."""
    path = Path(root) / job.key
    if path.exists():
        shutil.rmtree(path)
    try:
        _, summary = run_task(JOB_TASKS[job.task], job.config, out=path, cancel=cancel)
    except TaskFailed as e:
        return {"status": "failed", "error": str(e)}
    return {"status": "done", "summary": summary}
