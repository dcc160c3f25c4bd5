"""Research mode: the study's grid as one resumable sweep, locally or on a Ray cluster."""
from .config import SweepConfig
from .run import sweep

__all__ = ["SweepConfig", "sweep"]
