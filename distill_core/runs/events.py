"""Progress events and cancellation: how a long engine call talks to whoever runs it.

A long call is `run_x(config, on_event, cancel) -> result`. `on_event` gets small dicts such as
`{"kind": "step", "step": 10, "total": 200, "loss": 5.1}`; the CLI draws a progress bar from them, the app
stores them for its live charts, the run store appends them to `events.jsonl`. `cancel` is checked
between steps; a cancelled call raises `Cancelled` and leaves its run marked `cancelled`.
"""
from __future__ import annotations

import threading
from typing import Callable

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

