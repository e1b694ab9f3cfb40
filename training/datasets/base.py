"""What every dataset yields: one batch dict per item, in the contract's names.

Per modality ``m`` (docs/model-contract.md):
``m`` float32 [T, C, H, W] scaled; ``m_dates`` int32 [T, 3] (year, day_of_year, hour 0:
:func:`engine.preprocessing.dates.date_triplet`); ``m_mask``: with a ``patch_px`` (contract
version 2) bool [T, L] token mask (True = token without valid pixel or padded date slot; the
nodata pixels of partial tokens get their token's mean, :mod:`engine.preprocessing.tokens`),
without one bool [T] (True = padded date slot; nodata = 0, as contract version 1 trained).
Plus ``ref_date`` int32 [3] and ``target`` (segmentation: int64 [H, W] on the reference grid,
-1 = ignore; multilabel: float32 [K]). A modality a dataset lacks is simply absent.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from engine.preprocessing.tokens import fill_tokens

from .scaling import Scaling

IGNORE_INDEX = -1


@dataclass(frozen=True)
class ModalityInfo:
    """What a dataset knows of one input modality (the contract's fields but ``patch_px``,
    which is the model's).

    Attributes:
        name: contract name (``aerial``, ``dem``, ``s2``, ``s1_asc``, ``s1_desc``, ``spot``...).
        bands: band names in the order the items hold them.
        gsd_m: pixel size, metres.
        tile_px: tile side in pixels of this modality.
        num_dates: dates per item (1 for single-date modalities).
        scaling: the constant scaling applied.
        group: fusion group (``s1`` for both Sentinel-1 orbits).
    """

    name: str
    bands: tuple[str, ...]
    gsd_m: float
    tile_px: int
    num_dates: int = 1
    scaling: Scaling = field(default_factory=Scaling)
    group: str | None = None

    def contract(self, patch_px: int, min_dates: int = 1) -> dict:
        """The contract's ``modalities`` item."""
        return {"name": self.name, "bands": list(self.bands), "gsd_m": float(self.gsd_m),
                "tile_px": int(self.tile_px), "patch_px": int(patch_px),
                "min_dates": int(min(min_dates, self.num_dates)),
                "max_dates": int(self.num_dates),
                "scaling": self.scaling.contract(len(self.bands)),
                "nodata": {"fill_value": 0.0}, "group": self.group or self.name}


def selected_infos(specs: dict[str, ModalityInfo], names: list[str],
                   num_dates: dict[str, int]) -> list[ModalityInfo]:
    """The ModalityInfo of each selected modality with its number of dates per item."""
    return [replace(specs[m], num_dates=num_dates[m]) for m in names]


def class_list(names: list[str], colors: list[str]) -> list[dict]:
    """Contract classes ``{id, name, color}`` in logit order."""
    return [{"id": i, "name": n, "color": c} for i, (n, c) in enumerate(zip(names, colors))]


def series_item(name: str, pixels: np.ndarray, dates: np.ndarray, num_dates: int,
                patch_px: int | None = None, fill_value: float = 0.0
                ) -> dict[str, torch.Tensor]:
    """One modality's entries, padded to ``num_dates`` slots.

    Args:
        pixels: float32 [T, C, H, W], already scaled; NaN or infinite = nodata.
        dates: int [T, 3].
        patch_px: the model's patch for this modality: token mask [num_dates, L] and
            partial tokens filled (:func:`engine.preprocessing.tokens.fill_tokens`); None:
            date mask [num_dates] (padding only) and nodata set to ``fill_value``.
        fill_value: the contract's ``nodata.fill_value`` (pixels of missing tokens and of
            padded slots).
    """
    t = pixels.shape[0]
    if t > num_dates:
        raise ValueError(f"{name}: {t} dates for {num_dates} slots")
    if t == 0:
        raise ValueError(f"{name}: no date")
    pad = num_dates - t
    x = np.array(pixels, dtype=np.float32, order="C", copy=True)
    x[~np.isfinite(x)] = np.nan
    if patch_px:
        x, mask = fill_tokens(x, patch_px, fill_value)                 # mask [T, L]
    else:
        mask = np.zeros(t, bool)                       # version 1: only padding is masked
        x[np.isnan(x)] = np.float32(fill_value)
    d = np.asarray(dates, dtype=np.int32).reshape(t, 3)
    if pad:
        x = np.concatenate([x, np.full((pad, *x.shape[1:]), fill_value, np.float32)])
        d = np.concatenate([d, np.repeat(d[-1:], pad, axis=0)])
        mask = np.concatenate([mask, np.ones((pad, *mask.shape[1:]), bool)])
    return {name: torch.from_numpy(np.ascontiguousarray(x)),
            f"{name}_dates": torch.from_numpy(np.ascontiguousarray(d)),
            f"{name}_mask": torch.from_numpy(np.ascontiguousarray(mask))}


def item_rng(train: bool) -> np.random.Generator | None:
    """A generator for random choices in training, seeded from torch's RNG (seeded per
    DataLoader worker and by ``seed_everything``), None in evaluation."""
    if not train:
        return None
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def flip_item(item: dict[str, torch.Tensor], rng: np.random.Generator, keys: list[str]) -> None:
    """Random H-flip, W-flip and H<->W transpose, the same for every raster in ``keys``
    (tensors whose last two axes are H, W), in place (official: transform_rasters; applied in
    training only here). A token mask ``<k>_mask`` [T, L] moves with its pixels."""
    ops = rng.integers(0, 2, size=3)

    def move(x):
        if ops[0]:
            x = x.flip(-2)
        if ops[1]:
            x = x.flip(-1)
        if ops[2]:
            x = x.transpose(-2, -1)
        return x.contiguous()

    for k in keys:
        item[k] = move(item[k])
        mask = item.get(f"{k}_mask")
        if mask is not None and mask.dim() == 2:
            g = int(round(mask.shape[1] ** 0.5))
            item[f"{k}_mask"] = move(mask.reshape(mask.shape[0], g, g)).reshape(mask.shape)
