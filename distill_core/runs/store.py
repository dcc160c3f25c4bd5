"""The run store: one directory per run, the source of truth for everything the lab has done.

    runs/<id>/config.json     the full config, with kind, status and start time
    runs/<id>/events.jsonl    every progress event, one JSON object per line, time-stamped
    runs/<id>/summary.json    the final figures (written once, when the run ends)
    runs/<id>/*.safetensors   weights, each with a `.json` sidecar (see models/checkpoint.py)

Every whole-file write is atomic (temporary file in the same directory, then rename), so a crash or a
concurrent reader never sees half a file; events are appended line by line with a flush.
A run's status lives in config.json: running -> done | failed | cancelled.
"""
from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

from .events import Event, OnEvent


def default_root() -> Path:
    """Where runs go unless told otherwise: $DISTILL_RUNS, else ./runs."""
    return Path(os.environ.get("DISTILL_RUNS", "runs"))


def _jsonable(obj):
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path: Path, data) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


def new_run_id(kind: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(2)}"


class Run:
    """A run directory being written. Call it with an event (it forwards to `listener` too); end with `finish`."""

    def __init__(self, path: Path, kind: str, config, listener: OnEvent | None = None,
                 command: str | None = None):
        self.path = Path(path)
        self.listener = listener
        self.path.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self._lock = threading.Lock()
        self.record = {"kind": kind, "status": "running", "created": time.time(), "command": command,
                       "config": config}
        write_json(self.path / "config.json", self.record)
        self._events = open(self.path / "events.jsonl", "a", buffering=1)

    @property
    def id(self) -> str:
        return self.path.name

    def __call__(self, event: Event) -> None:
        line = json.dumps({"t": round(time.time(), 3), **event}, default=_jsonable)
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


class RunStore:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_root()

    def create(self, kind: str, config, path: Path | str | None = None, listener=None, command=None) -> Run:
        """A new run at `path`, or under the store root with a fresh id."""
        return Run(Path(path) if path else self.root / new_run_id(kind), kind, config, listener, command)

    def list(self) -> list[dict]:
        """Every run on disk, newest first, with its status and summary where present; a pipeline's stage
        runs follow it, with `parent` set to the pipeline's id. Unreadable records are skipped."""
        out = []
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir(), reverse=True):
            run = _try_load(d)
            if run is None:
                continue
            out.append(run)
            for stage in sorted(d.iterdir()):
                if (sub := _try_load(stage)) is not None:
                    out.append({**sub, "parent": run["id"]})
        return out


def _try_load(path: Path) -> dict | None:
    if not (path / "config.json").is_file():
        return None
    try:
        return load_run(path)
    except (OSError, ValueError):  # a damaged record must not hide the others
        return None


def load_run(path: Path | str) -> dict:
    path = Path(path)
    rec = read_json(path / "config.json")
    rec["id"], rec["path"] = path.name, str(path)
    summary = path / "summary.json"
    rec["summary"] = read_json(summary) if summary.is_file() else None
    return rec


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
