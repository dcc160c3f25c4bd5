"""Live curves, one implementation for every training task: quick CA/ASR estimates of the model being trained
every `eval_every` epochs and at the last, added to the run's epoch events (which the app's charts and the CLI's
lines read), kept as the summary's `curves`, with the epoch of the best quick CA (a criterion a real defender
could apply: it needs no knowledge of the trigger)."""
from __future__ import annotations

from torch import nn

from ..runs.store import Run
from .downstream import Downstream, figures
from .probe import Probe


class LiveCurves:
    def __init__(self, quick: Downstream | None, model: nn.Module, run: Run, every: int, last: int, phase: str = ""):
        self.quick, self.model, self.run, self.every, self.last = quick, model, run, every, last
        self.phase = {"phase": phase} if phase else {}
        self.curves: list[dict] = []
        self.best = {"epoch": 0, "ca": -1.0}

    def start(self, known: dict | None = None) -> None:
        """The curves' starting point, epoch 0: `known` figures (the clean encoder's, remembered), else estimated."""
        if self.quick:
            self.curves.append({"epoch": 0, **(known or self.estimate(0))})
            self.run({"kind": "epoch", **self.phase, "epochs": self.last, **self.curves[-1]})

    def due(self, epoch: int) -> bool:
        return bool(self.quick) and (epoch % self.every == 0 or epoch == self.last)

    def estimate(self, epoch: int) -> dict:
        probe = self.quick.fit(self.model)
        figs = figures(self.quick.score(self.model, probe))
        self.estimated(epoch, probe)
        return figs

    def estimated(self, epoch: int, probe: Probe) -> None:
        """Called after each estimate with its probe (a subclass records more with it: the distillation's film)."""

    def record(self, epoch: int, event: dict) -> bool:
        """Add this epoch's estimate to its event and the curves; True when it is the best quick CA so far."""
        event.update(self.estimate(epoch))
        self.curves.append({"epoch": epoch, **figures(event)})
        if event["ca"] <= self.best["ca"]:
            return False
        self.best = {"epoch": epoch, "ca": event["ca"]}
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "curves": self.curves}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.curves = state["best"], state["curves"]
