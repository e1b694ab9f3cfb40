"""Date selection for time series: one date per bin, avoiding clouds.

As in official: maestro/dataset/dataset.py::preprocess_raster. A series of T dates is cut to
``num_dates * k`` dates (k = T // num_dates) starting at an offset in ``0..T % num_dates``
(random in training, 0 in evaluation), reshaped into ``num_dates`` consecutive bins of k dates,
and one date is taken per bin:

- training (``random=True``): a random date of the bin;
- evaluation: the date whose image is closest (mean absolute difference over bands and pixels)
  to the bin's per-pixel nan-median.

A date is *cloudy* when any pixel of the crop has a mask channel above the threshold; cloudy
dates are skipped unless every date of its bin is cloudy. Dates holding NaNs (Sentinel-1 in
TreeSatAI-TS) are skipped the same way. A series shorter than ``num_dates`` is kept whole and
padded by the caller (the official code fails there).
"""
from __future__ import annotations

import warnings

import numpy as np


def cloudy_dates(mask: np.ndarray, threshold: float) -> np.ndarray:
    """bool [T]: True where any channel of any pixel exceeds ``threshold``.

    Args:
        mask: [T, M, H, W] (M mask channels, e.g. snow and cloud probability 0-100) or [T, H, W].
    """
    m = mask.reshape(mask.shape[0], -1)
    return (m > threshold).any(axis=1)


def select_dates(images: np.ndarray, num_dates: int, rng: np.random.Generator | None,
                 cloudy: np.ndarray | None = None) -> np.ndarray:
    """Indices (int64 [min(T, num_dates)], increasing) of the dates to keep.

    Args:
        images: [T, C, H, W] pixel values (any scale; NaN allowed).
        num_dates: number of bins.
        rng: random generator for training; None = evaluation (deterministic).
        cloudy: bool [T], dates to avoid (see :func:`cloudy_dates`).
    """
    total = images.shape[0]
    if num_dates < 1:
        raise ValueError(f"num_dates must be >= 1 (got {num_dates})")
    if total <= num_dates:
        return np.arange(total)
    k = total // num_dates
    spare = total - k * num_dates
    offset = int(rng.integers(0, spare + 1)) if rng is not None else 0
    bad = np.zeros(total, bool) if cloudy is None else np.asarray(cloudy, bool).copy()
    has_nan = np.isnan(images.reshape(total, -1)).any(axis=1)
    chosen = []
    for b in range(num_dates):
        idx = np.arange(offset + b * k, offset + (b + 1) * k)
        # Preference order: clear and finite, then finite, then anything.
        for keep in (~bad[idx] & ~has_nan[idx], ~has_nan[idx], np.ones(k, bool)):
            cand = idx[keep]
            if cand.size:
                break
        if rng is not None:
            chosen.append(int(rng.choice(cand)))
            continue
        stack = images[cand].astype(np.float64)
        with warnings.catch_warnings():  # all-NaN pixels only happen in the fallback
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(stack, axis=0, keepdims=True)
            dist = np.nanmean(np.abs(stack - median).reshape(cand.size, -1), axis=1)
        dist = np.where(np.isnan(dist), np.inf, dist)
        chosen.append(int(cand[int(np.argmin(dist))]))
    return np.asarray(chosen, dtype=np.int64)
