"""Model input scaling and nodata handling for one slice (docs/model-contract.md)."""
from __future__ import annotations

import numpy as np

from .contract import ModalitySpec


def scale_slice(data: np.ndarray, spec: ModalitySpec) -> tuple[np.ndarray, np.ndarray]:
    """Scale raw pixels as the model expects and fill nodata.

    A pixel is nodata when any of its bands is NaN (see engine.align); all its bands then
    get ``spec.nodata_fill``. Valid pixels get ``(f(x) - mean[b]) / std[b]``.

    Args:
        data: float32 [bands, h, w], NaN = nodata (modified in place).

    Returns:
        (scaled float32 [bands, h, w], valid bool [h, w]).
    """
    valid = ~np.isnan(data).any(axis=0)
    if spec.scaling.transform == "log":
        np.maximum(data, 1e-10, out=data)
        np.log(data, out=data)
    mean = np.asarray(spec.scaling.mean, dtype=np.float32)[:, None, None]
    inv_std = (1.0 / np.asarray(spec.scaling.std, dtype=np.float32))[:, None, None]
    data -= mean
    data *= inv_std
    data[:, ~valid] = spec.nodata_fill
    return data, valid
