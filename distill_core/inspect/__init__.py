"""Where does an encoder look? Captum attributions for encoders, the trigger-attention share, embedding views."""
from .attribution import METHODS, QUANTITIES, attribute
from .share import trigger_share

__all__ = ["METHODS", "QUANTITIES", "attribute", "trigger_share"]
