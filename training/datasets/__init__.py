"""Datasets yielding batch dicts in the contract's names (see :mod:`.base`)."""
from .base import IGNORE_INDEX, ModalityInfo
from .collate import collate
from .geotiff_stack import GeoTiffStack, StackModality
from .scaling import Scaling
from .treesatai import TreeSatAITS

__all__ = ["IGNORE_INDEX", "ModalityInfo", "collate", "GeoTiffStack", "StackModality", "Scaling",
           "TreeSatAITS"]
