"""The run store: one directory per run, the source of truth for everything the lab has done.

    runs/<id>/config.json     the full config, with kind, status and start time
    runs/<id>/events.jsonl    every progress event, one JSON object per line, time-stamped
    runs/<id>/summary.json    the final figures (written once, when the run ends)
    runs/<id>/*.safetensors   weights, each with a `.json` sidecar (see models/checkpoint.py)

Every whole-file write is atomic (temporary file in the same directory, then rename), so a crash or a
concurrent reader never sees half a file; events are appended line by line with a flush. A new run's folder
is created exclusively, so two processes writing into one store never share a run.

A run's status lives in config.json: running -> done | failed | cancelled. The record names the process
writing it (`writer`); a run still `running` whose writer is gone (a server restart, a crash, a killed
CLI) is `interrupted`. A folder whose record cannot be read is listed as `damaged`, with the reason.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from ..files import jsonable, read_json, write_json
from ..events import Event, OnEvent


def default_root() -> Path:
    """Where runs go unless told otherwise: $DISTILL_RUNS, else ./runs."""
    return Path(os.environ.get("DISTILL_RUNS", "runs"))


def new_run_id(kind: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"


def _start_ticks(pid: int) -> str | None:
    """When process `pid` started (Linux: clock ticks since boot), so that a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_ticks(os.getpid())}


def writer_gone(writer: dict | None) -> bool:
    """True only when the process that wrote a record is known to have ended: same host, and its pid is dead
    or now belongs to a later process. A writer on another host (a shared store) is never judged."""
    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname():
        return False
    pid = writer.get("pid")
    if not isinstance(pid, int):
        return False
    if writer.get("started") is not None and _start_ticks(os.getpid()) is not None:
        return _start_ticks(pid) != writer["started"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


class Run:
    """A run directory being written. Call it with an event (it forwards to `listener` too); end with `finish`."""

    def __init__(self, path: Path, kind: str, config, listener: OnEvent | None = None,
                 command: str | None = None, record: dict | None = None):
        self.path = Path(path)
        self.listener = listener
        self.path.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self._lock = threading.Lock()
        self.resumed = record is not None
        self.record = record or {"kind": kind, "created": time.time(), "command": command, "config": config}
        self.record.update(status="running", writer=this_process())
        write_json(self.path / "config.json", self.record)
        self._events = open(self.path / "events.jsonl", "a", buffering=1)

    @classmethod
    def reopen(cls, path: Path | str, listener: OnEvent | None = None) -> "Run":
        """Carry on writing an interrupted or cancelled run (its record says `resumed` when)."""
        rec = read_json(Path(path) / "config.json")
        for key in ("error", "finished", "interrupted"):
            rec.pop(key, None)
        rec["resumed"] = [*rec.get("resumed", []), time.time()]
        return cls(path, rec["kind"], rec["config"], listener, record=rec)

    def events_offset(self) -> int:
        """Where the next event will be written (a checkpoint keeps it, so a resume can rewind to it)."""
        with self._lock:
            self._events.flush()
            return self._events.tell()

    def rewind_events(self, offset: int) -> None:
        """Drop every event written after `offset`: a resumed run's record reads as one unbroken run."""
        with self._lock:
            self._events.close()
            os.truncate(self.path / "events.jsonl", offset)
            self._events = open(self.path / "events.jsonl", "a", buffering=1)

    @property
    def id(self) -> str:
        return self.path.name

    def __call__(self, event: Event) -> None:
        line = json.dumps({"t": round(time.time(), 3), **event}, default=jsonable)
        with self._lock:
            if not self._events.closed:
                self._events.write(line + "\n")
        if self.listener is not None:
            self.listener(event)

    def file(self, name: str) -> Path:
        return self.path / name

    def finish(self, status: str, summary: dict | None = None, error: str | None = None) -> None:
        if summary is not None:
            write_json(self.path / "summary.json", summary)
        self.record.update(status=status, finished=time.time())
        if error:
            self.record["error"] = error
        write_json(self.path / "config.json", self.record)
        with self._lock:
            self._events.close()


INTERRUPTED = "its process stopped (a server restart or a crash) before the run finished"

STORE_FOLDERS = {"uploads", "prepared"}  # the store's own folders (uploaded files, kept teachers), not runs


class RunStore:
    """Runs under `root`, which this store writes; `shipped` folders hold read-only runs that come with the lab
    (the pre-computed demo story), listed after the store's own with `shipped` set."""

    def __init__(self, root: Path | str | None = None, shipped: tuple[Path, ...] = ()):
        self.root = Path(root) if root is not None else default_root()
        self.shipped = tuple(Path(p) for p in shipped)

    def create(self, kind: str, config, path: Path | str | None = None, listener=None, command=None) -> Run:
        """A new run at `path`, or under the store root in a folder no other process can also claim."""
        return Run(Path(path) if path else self.new_folder(kind), kind, config, listener, command)

    def new_folder(self, kind: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            path = self.root / new_run_id(kind)
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue

    def list(self) -> list[dict]:
        """Every run on disk, newest first, with its status and summary where present; a pipeline's stage
        runs follow it, with `parent` set to the pipeline's id. A folder whose record cannot be read is
        listed with status `damaged` and the reason in `error`; a running run whose writer has ended reads
        `interrupted` (see `mark_interrupted` to record that)."""
        out = []
        for root in (self.root, *self.shipped):
            mark = {"shipped": True} if root in self.shipped else {}
            folders = sorted(root.iterdir(), reverse=True) if root.is_dir() else []
            for d in folders:
                if not d.is_dir() or d.name.startswith(".") or d.name in STORE_FOLDERS or _being_created(d):
                    continue
                run = {**_try_load(d), **mark}
                out.append(run)
                for stage in sorted(d.iterdir()):
                    if stage.is_dir() and (stage / "config.json").exists():
                        out.append({**_try_load(stage), "parent": run["id"], **mark})
        return out

    def mark_interrupted(self, reason: str = INTERRUPTED, under: Path | None = None) -> list[str]:
        """Record `interrupted`, and why, in every run (under `under`: that run and its stages) whose writer has
        ended while it ran (a server does this when it starts, a job's parent when its process dies); returns
        their ids."""
        marked = []
        for run in self.list():
            if run.get("shipped"):
                continue
            if under is not None and not Path(run["path"]).is_relative_to(under):
                continue
            if run["status"] == "interrupted" and run.get("writer_gone"):
                rec = read_json(Path(run["path"]) / "config.json")
                rec.update(status="interrupted", interrupted=time.time(), error=reason)
                write_json(Path(run["path"]) / "config.json", rec)
                marked.append(run["id"])
        return marked


def _being_created(path: Path) -> bool:
    """A folder made in the last minute whose record is not written yet: a run starting, not a damaged one."""
    return not (path / "config.json").exists() and time.time() - _mtime(path) < 60


def _try_load(path: Path) -> dict:
    """The run at `path`, or a `damaged` entry saying why it cannot be read: one bad folder never hides
    the others."""
    try:
        return load_run(path)
    except FileNotFoundError as e:
        reason = f"{Path(e.filename).name} is missing (the run was never fully created, or files were removed)"
    except (OSError, ValueError) as e:
        reason = str(e)
    parts = path.name.split("-")
    return {"id": path.name, "path": str(path), "kind": parts[2] if len(parts) == 4 else "", "status": "damaged",
            "error": reason, "config": {}, "summary": None, "created": _mtime(path)}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def load_run(path: Path | str) -> dict:
    """A run's record and summary; ValueError (or OSError) if they cannot be read as one."""
    path = Path(path)
    rec = _read_record(path / "config.json")
    if not isinstance(rec, dict) or not isinstance(rec.get("status"), str) or "kind" not in rec:
        raise ValueError("config.json is not a run record (no kind or status)")
    rec["id"], rec["path"] = path.name, str(path)
    summary = path / "summary.json"
    rec["summary"] = _read_record(summary) if summary.is_file() else None
    if rec["status"] == "running" and writer_gone(rec.get("writer")):
        rec.update(status="interrupted", error=INTERRUPTED, writer_gone=True)
    return rec


def _read_record(path: Path):
    try:
        return read_json(path)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name} is not valid JSON ({e.msg}, line {e.lineno}): it was cut short or "
                         f"edited by hand") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not text") from None


def read_events(path: Path | str) -> list[Event]:
    """All complete events of a run (a half-written last line is skipped)."""
    events = []
    try:
        with open(Path(path) / "events.jsonl") as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return events
