"""Cells as Ray tasks (`--ray auto|local|ADDRESS`): each job is one task asking for a GPU when the cluster
has them (`num_gpus=1`, else one CPU), and takes the jobs it needs as object refs, so Ray starts it only after
them and every shared stage runs once. A job returns the files it wrote, and a job on another machine writes
the files of the jobs it needs into the same sweep folder there first: a cluster needs no shared disk. The
driver keeps what comes back (a cell's record and summary; its weights stay where it ran).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..events import CancelToken, Cancelled
from ..files import write_atomic
from .schedule import SweepJob, run_job

CELL_FILES = ("config.json", "summary.json", "events.jsonl")  # what a cell sends back (weights stay)


def files_of(root: Path, job: SweepJob, outcome: dict) -> dict[str, bytes]:
    """The files a job's dependents need, relative to the sweep folder."""
    if outcome["status"] != "done":
        return {}
    folder = root / job.key
    paths = [folder / name for name in CELL_FILES] if not job.stage else [p for p in folder.rglob("*") if p.is_file()]
    paths += [Path(p) for p in outcome["summary"].get("kept", [])]  # a prepare job's kept teacher or student
    return {str(p.relative_to(root)): p.read_bytes() for p in paths if p.is_file()}


def write_missing(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        if path.is_file() and path.stat().st_size == len(data):
            continue  # the same machine, or already written
        write_atomic(path, data)


def remote_job(job: SweepJob, root: str, *needed: dict) -> dict:
    """One job on a Ray worker: skipped if a job it needs did not finish, else run after writing their files."""
    root = Path(root)
    failed = next((n for n in needed if n["status"] != "done"), None)
    if failed is not None:
        return {"status": "skipped", "error": f"{failed['key']} did not finish"}
    for n in needed:
        write_missing(root, n["files"])
    outcome = run_job(job, root)
    return {**outcome, "key": job.key, "files": files_of(root, job, outcome)}


def connect(address: str):
    import ray
    if not ray.is_initialized():
        package = str(Path(__file__).resolve().parents[2])  # so workers import this very engine
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}}
        ray.init(address=None if address == "local" else address, runtime_env=env, log_to_driver=False,
                 include_dashboard=False if address == "local" else None)
    return ray


def run_on_ray(jobs: list[SweepJob], root: Path, results: dict, report, cancel: CancelToken, address: str) -> None:
    ray = connect(address)
    resources = {"num_gpus": 1} if ray.cluster_resources().get("GPU", 0) >= 1 else {"num_cpus": 1}
    task = ray.remote(max_retries=0, **resources)(remote_job)
    refs, pending = {}, {}
    for job in jobs:
        if job.key in results:  # finished in an earlier run: its files travel from here
            refs[job.key] = ray.put({**results[job.key], "key": job.key, "files": files_of(root, job, results[job.key])})
            continue
        refs[job.key] = task.remote(job, str(root), *(refs[k] for k in job.needs))
        pending[refs[job.key]] = job
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            cancel.check()
            for ref in ready:
                job = pending.pop(ref)
                outcome = ray.get(ref)
                if not job.stage:
                    write_missing(root, outcome.pop("files"))
                results[job.key] = outcome
                report(job, outcome)
    except (Cancelled, KeyboardInterrupt):
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
