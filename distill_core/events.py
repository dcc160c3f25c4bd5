"""Progress events and cancellation: how a long engine call talks to whoever runs it.

A long call is `run_x(config, on_event, cancel) -> result`. `on_event` gets small dicts such as
`{"kind": "step", "step": 10, "total": 200, "loss": 5.1}`; the CLI draws a progress bar from them, the app
stores them for its live charts, the run store appends them to `events.jsonl`. `cancel` is checked
between steps; a cancelled call raises `Cancelled` and leaves its run marked `cancelled`. Loops deep in
the engine that no token is handed to (feature extraction, probes, data loading) call `cancel_point()`,
which checks the token of the task running in this thread, so a cancel also stops an evaluation.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

Event = dict
OnEvent = Callable[[Event], None]


class Cancelled(Exception):
    """Raised inside an engine call when its cancel token is set."""


class CancelToken:
    def __init__(self):
        self._flag = threading.Event()

    def cancel(self) -> None:
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def check(self) -> None:
        if self._flag.is_set():
            raise Cancelled("cancelled by the user")



_current: ContextVar[CancelToken | None] = ContextVar("cancel_token", default=None)


@contextmanager
def cancellable(token: CancelToken) -> Iterator[None]:
    """Make `token` the one `cancel_point` checks while the block runs (in this thread only)."""
    reset = _current.set(token)
    try:
        yield
    finally:
        _current.reset(reset)


def cancel_point() -> None:
    """Raise `Cancelled` if the task running in this thread has been cancelled (no-op outside a task)."""
    token = _current.get()
    if token is not None:
        token.check()
