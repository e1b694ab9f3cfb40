"""The contract scaling of model inputs (docs/model-contract.md, "scaling").

``x' = (f(x) - mean[b]) / std[b]`` per band ``b``, ``f`` the identity (``"none"``) or
``log(max(x, 1e-10))`` (``"log"``). MAESTRO itself has no z-score: it divides by a constant
(S2 /5000, aerial /255, DEM /1000, S1 log then /5), i.e. ``mean = 0``, ``std = constant``
(official: maestro/conf/dataset/*.py, maestro/dataset/dataset.py). The engine and training's
datasets both call :func:`scale_pixels`, so a model sees bit-identical inputs in both.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Floor applied before the log transform (official: MAESTRO's log of S1 backscatter).
LOG_FLOOR = 1e-10
TRANSFORMS = ("none", "log")


def scale_pixels(data: np.ndarray, transform: str, mean: Sequence[float], std: Sequence[float],
                 band_axis: int = -3) -> np.ndarray:
    """Scale pixels as the contract says; NaN (nodata) stays NaN.

    Args:
        data: [..., bands, H, W] raw values (any real dtype; float32 arrays are scaled in
            place, others are converted to a new float32 array).
        transform: ``"none"`` or ``"log"``.
        mean, std: one value per band (``std > 0``).
        band_axis: axis of the bands.

    Returns:
        float32 array of ``data``'s shape (``data`` itself when it was float32).

    Raises:
        ValueError: unknown transform, or mean/std not one value per band.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown scaling transform {transform!r} (known: {TRANSFORMS})")
    x = data if (isinstance(data, np.ndarray) and data.dtype == np.float32) else \
        np.asarray(data, dtype=np.float32).copy()
    nb = x.shape[band_axis]
    if len(mean) != nb or len(std) != nb:
        raise ValueError(f"scaling has {len(mean)} means and {len(std)} stds for {nb} bands")
    shape = [1] * x.ndim
    shape[band_axis] = nb
    if transform == "log":
        with np.errstate(invalid="ignore"):
            np.maximum(x, np.float32(LOG_FLOOR), out=x)   # NaN stays NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(x, out=x)
    x -= np.asarray(mean, dtype=np.float32).reshape(shape)
    x /= np.asarray(std, dtype=np.float32).reshape(shape)
    return x


def scale_slice(data: np.ndarray, spec) -> tuple[np.ndarray, np.ndarray]:
    """Scale one slice for a ``ModalitySpec`` and set nodata pixels to ``spec.nodata_fill``
    (contract version 1's filling: every nodata pixel gets the fill value).

    Args:
        data: float32 [bands, h, w], NaN = nodata (modified in place).

    Returns:
        (scaled float32 [bands, h, w], valid bool [h, w]).
    """
    valid = ~np.isnan(data).any(axis=0)
    sc = spec.scaling
    data = scale_pixels(data, sc.transform, sc.mean, sc.std)
    data[:, ~valid] = spec.nodata_fill
    return data, valid
