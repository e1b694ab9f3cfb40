"""Moved to :mod:`engine.preprocessing.scaling` (re-exported here for older imports)."""
from .preprocessing.scaling import scale_pixels, scale_slice  # noqa: F401
