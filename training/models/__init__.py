"""The MAESTRO network (training/models/maestro.py) and its configuration."""
from .config import SIZES, MaestroConfig, ModalityConfig
from .maestro import Maestro

__all__ = ["SIZES", "MaestroConfig", "ModalityConfig", "Maestro"]
