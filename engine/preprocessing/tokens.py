"""Pixel validity -> token mask, and the filling of nodata pixels (docs/model-contract.md,
contract version 2, "m_mask" and the pixel filling rule).

A *token* is one ``patch_px`` x ``patch_px`` patch of one date of one modality; the tokens of
a tile are numbered in row-major order of its ``(tile_px / patch_px)^2`` patch grid. A pixel is
nodata when any of its bands is NaN. Then, per token:

- at least one valid pixel: the token is present; its nodata pixels get the per-band mean of
  its valid pixels (after scaling), so the patch embedding sees no artificial edge;
- no valid pixel: the token is missing (``True`` in the mask) and its pixels get
  ``fill_value`` (they never reach the model: the graph leaves missing tokens out).

Contract version 1 (no token mask in the graph): every nodata pixel gets ``fill_value`` and a
date slot is masked only when none of its pixels is valid (:func:`model_input` with
``token_masks=False``).

The same functions run in the engine (per tile) and in training's datasets (per item), on
C-contiguous float32 copies, so both produce bit-identical inputs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .scaling import scale_pixels


def token_count(tile_px: int, patch_px: int) -> int:
    """Tokens per date of a tile: ``(tile_px / patch_px)^2``.

    Raises:
        ValueError: ``tile_px`` is not a positive multiple of ``patch_px``.
    """
    if patch_px < 1 or tile_px < patch_px or tile_px % patch_px:
        raise ValueError(f"tile of {tile_px} px is not a multiple of the {patch_px} px patch")
    return (tile_px // patch_px) ** 2


def pixel_validity(x: np.ndarray) -> np.ndarray:
    """bool [..., H, W]: True where no band of ``x`` [..., C, H, W] is NaN."""
    return ~np.isnan(x).any(axis=-3)


def token_missing(valid: np.ndarray, patch_px: int) -> np.ndarray:
    """The token mask of pixel validity.

    Args:
        valid: bool [..., H, W] (H = W, a multiple of ``patch_px``).

    Returns:
        bool [..., L], L = (H / patch_px)^2, row-major; True = no valid pixel in the token.
    """
    h, w = valid.shape[-2:]
    token_count(h, patch_px), token_count(w, patch_px)
    g_h, g_w = h // patch_px, w // patch_px
    v = valid.reshape(*valid.shape[:-2], g_h, patch_px, g_w, patch_px)
    return ~v.any(axis=(-3, -1)).reshape(*valid.shape[:-2], g_h * g_w)


def fill_tokens(x: np.ndarray, patch_px: int, fill_value: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Fill the nodata (NaN) pixels of scaled pixels by the token rule above.

    Args:
        x: float32 [..., C, H, W], scaled, NaN = nodata.
        patch_px: token patch side, pixels.
        fill_value: value of the pixels of missing tokens.

    Returns:
        (filled float32 [..., C, H, W], C-contiguous, no NaN; missing bool [..., L]).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    *lead, c, h, w = x.shape
    token_count(h, patch_px), token_count(w, patch_px)
    g_h, g_w, p = h // patch_px, w // patch_px, patch_px
    valid = pixel_validity(x)                                        # [..., H, W]
    if valid.all():                                                  # nothing to fill
        return x, np.zeros((*lead, g_h * g_w), bool)
    xr = x.reshape(*lead, c, g_h, p, g_w, p)
    vr = valid.reshape(*lead, 1, g_h, p, g_w, p)
    counts = vr.sum(axis=(-3, -1), dtype=np.int64)                   # [..., 1, g_h, g_w]
    sums = np.where(vr, xr, 0.0).sum(axis=(-3, -1), dtype=np.float64)  # [..., C, g_h, g_w]
    means = (sums / np.maximum(counts, 1)).astype(np.float32)
    means[np.broadcast_to(counts == 0, means.shape)] = np.float32(fill_value)
    out = np.where(vr, xr, means[..., :, None, :, None]).astype(np.float32, copy=False)
    missing = (counts[..., 0, :, :] == 0).reshape(*lead, g_h * g_w)
    return np.ascontiguousarray(out.reshape(x.shape)), missing


def model_input(raw: np.ndarray, transform: str, mean: Sequence[float], std: Sequence[float],
                patch_px: int, fill_value: float, token_masks: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One modality's pixels and mask for the model, from raw values.

    Args:
        raw: [dates, C, H, W] raw pixel values (after any GDAL scale/offset), NaN = nodata
            (not modified).
        transform, mean, std: the contract scaling (:func:`..scaling.scale_pixels`).
        patch_px: token patch side (contract ``patch_px``).
        fill_value: contract ``nodata.fill_value``.
        token_masks: True for contract version 2 (token mask, partial tokens filled with
            their mean); False for version 1 (nodata = ``fill_value``, a date mask).

    Returns:
        (pixels float32 [dates, C, H, W] C-contiguous,
         mask bool [dates, L] (version 2) or [dates] (version 1), True = missing,
         valid bool [dates, H, W]: pixels with data).
    """
    x = np.array(raw, dtype=np.float32, order="C", copy=True)
    valid = pixel_validity(x)
    x = scale_pixels(x, transform, mean, std)
    if token_masks:
        pixels, mask = fill_tokens(x, patch_px, fill_value)
        return pixels, mask, valid
    x[np.broadcast_to(~valid[..., None, :, :], x.shape)] = np.float32(fill_value)
    return x, ~valid.reshape(*valid.shape[:-2], -1).any(axis=-1), valid
