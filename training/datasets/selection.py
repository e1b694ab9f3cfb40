"""Date selection for time series: one date per bin, avoiding clouds.

As in official: maestro/dataset/dataset.py::preprocess_raster. A series of T dates is cut to
``num_dates * k`` dates (k = T // num_dates) starting at an offset in ``0..T % num_dates``
(random in training, 0 in evaluation), reshaped into ``num_dates`` consecutive bins of k dates,
and one date is taken per bin.

Clouds (official, the same function): a pixel is *cloudy* when any of its mask channels is
above the threshold; a date is cloudy when any of its pixels is. In a bin where at least one
date is clear, cloudy pixels are set to NaN; in a bin where every date is cloudy the clouds
are ignored. Then:

- training (``random=True``): a random date among those of the bin without any NaN pixel;
- evaluation: the date without any NaN pixel whose image is closest (mean absolute
  difference over bands and pixels) to the bin's per-pixel NaN-median *over all its dates*
  (the cloudy dates' clear pixels count in the median).

So a partly cloudy bin picks a clear date, judged against the median of every clear pixel
of the bin. Dates holding NaNs of their own (Sentinel-1 in TreeSatAI-TS) are never picked
while another date is complete. Where the official code fails (a series shorter than
``num_dates``: reshape error; a bin without any complete date: ``nanargmin`` of all-NaN), the
series is kept whole (padded by the caller); in a bin without any complete date the clouds
are ignored, and if still no date is complete the pick is the smallest mean difference over
each date's valid pixels (random: any date).
"""
from __future__ import annotations

import warnings

import numpy as np


def cloudy_pixels(mask: np.ndarray, threshold: float) -> np.ndarray:
    """bool [T, H, W]: True where any mask channel of the pixel exceeds ``threshold``.

    Args:
        mask: [T, M, H, W] (M mask channels, e.g. snow and cloud probability 0-100) or
            [T, H, W].
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        return m > threshold
    if m.ndim != 4:
        raise ValueError(f"cloud mask must be [T, M, H, W] or [T, H, W], got {m.shape}")
    return (m > threshold).any(axis=1)


def cloudy_dates(mask: np.ndarray, threshold: float) -> np.ndarray:
    """bool [T]: True where any channel of any pixel exceeds ``threshold``.

    Args:
        mask: [T, M, H, W] (M mask channels, e.g. snow and cloud probability 0-100) or [T, H, W].
    """
    m = mask.reshape(mask.shape[0], -1)
    return (m > threshold).any(axis=1)


def _closest_to_median(stack: np.ndarray) -> int:
    """Index of the date of ``stack`` [k, C, H, W] (float64, NaN = no data) without any NaN
    that is closest to the per-pixel NaN-median of all k dates (official: nanmedian over the
    bin, plain mean of the absolute difference, nanargmin). Without any complete date: the
    smallest mean difference over each date's valid pixels (the official code fails)."""
    with warnings.catch_warnings():  # all-NaN pixels: their median is NaN, skipped below
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(stack, axis=0, keepdims=True)
        diff = np.abs(stack - median).reshape(stack.shape[0], -1)
        complete = ~np.isnan(stack.reshape(stack.shape[0], -1)).any(axis=1)
        if complete.any():   # (a complete date leaves no pixel without a median)
            return int(np.argmin(np.where(complete, diff.mean(axis=1), np.inf)))
        dist = np.nanmean(diff, axis=1)
    dist = np.where(np.isnan(dist), np.inf, dist)
    return int(np.argmin(dist))


def select_dates(images: np.ndarray, num_dates: int, rng: np.random.Generator | None,
                 cloudy: np.ndarray | None = None) -> np.ndarray:
    """Indices (int64 [min(T, num_dates)], increasing) of the dates to keep.

    Args:
        images: [T, C, H, W] pixel values (any scale; NaN allowed).
        num_dates: number of bins.
        rng: random generator for training; None = evaluation (deterministic).
        cloudy: bool [T, H, W] cloudy pixels (:func:`cloudy_pixels`, the official rule) or
            bool [T] cloudy dates (:func:`cloudy_dates`: every pixel of such a date counts
            as cloudy).

    Raises:
        ValueError: ``num_dates`` < 1, or ``cloudy`` of another shape.
    """
    total = images.shape[0]
    if num_dates < 1:
        raise ValueError(f"num_dates must be >= 1 (got {num_dates})")
    if total <= num_dates:
        return np.arange(total)
    k = total // num_dates
    spare = total - k * num_dates
    offset = int(rng.integers(0, spare + 1)) if rng is not None else 0
    h, w = images.shape[-2:]
    if cloudy is None:
        pixels = np.zeros((total, h, w), bool)
    else:
        pixels = np.asarray(cloudy, bool)
        if pixels.shape == (total,):
            pixels = np.broadcast_to(pixels[:, None, None], (total, h, w))
        elif pixels.shape != (total, h, w):
            raise ValueError(f"cloudy must be [T] or [T, H, W] = {(total, h, w)} for images "
                             f"{images.shape}, got {pixels.shape}")
    chosen = []
    for b in range(num_dates):
        idx = np.arange(offset + b * k, offset + (b + 1) * k)
        raw = images[idx].astype(np.float64)                         # [k, C, H, W]
        clouds = pixels[idx]
        masked = raw
        if not clouds.reshape(k, -1).any(axis=1).all():             # a clear date exists
            masked = np.where(clouds[:, None], np.nan, raw)
        # The cloud-masked bin; if no date of it is complete (clear dates with NaNs of their
        # own), the bin with clouds ignored (the official code fails there).
        for stack in (masked, raw):
            complete = ~np.isnan(stack.reshape(k, -1)).any(axis=1)
            if complete.any():
                break
        if rng is not None:
            chosen.append(int(rng.choice(idx[complete] if complete.any() else idx)))
            continue
        chosen.append(int(idx[_closest_to_median(stack)]))
    return np.asarray(chosen, dtype=np.int64)
