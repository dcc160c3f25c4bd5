"""Research mode: the study's grid as one resumable sweep, locally or on a Ray cluster."""
from ..runs.registry import Task
from .config import SweepConfig, validate
from .run import sweep

__all__ = ["SWEEP_TASK", "SweepConfig", "sweep"]

SWEEP_TASK = Task("sweep", SweepConfig, sweep, "The study's grid: attacks x downstreams x teachers x students x losses "
                  "x placements x seeds, shared stages computed once, resumable, gathered into tables (locally or on Ray).",
                  validate, resumable=True)
