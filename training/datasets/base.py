"""What every dataset yields: one batch dict per item, in the contract's names.

Per modality ``m`` (docs/model-contract.md):
``m`` float32 [T, C, H, W] scaled; ``m_dates`` int32 [T, 3] (year, day_of_year, hour);
``m_mask`` bool [T] (True = padded date slot). Plus ``ref_date`` int32 [3] and ``target``
(segmentation: int64 [H, W] on the reference grid, -1 = ignore; multilabel: float32 [K]).
A modality a dataset lacks is simply absent.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

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


def series_item(name: str, pixels: np.ndarray, dates: np.ndarray, num_dates: int
                ) -> dict[str, torch.Tensor]:
    """One modality's entries, padded to ``num_dates`` slots.

    Args:
        pixels: float32 [T, C, H, W], already scaled; NaN is replaced by 0 (the nodata fill).
        dates: int [T, 3].
    """
    t = pixels.shape[0]
    if t > num_dates:
        raise ValueError(f"{name}: {t} dates for {num_dates} slots")
    if t == 0:
        raise ValueError(f"{name}: no date")
    pad = num_dates - t
    x = np.nan_to_num(pixels.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    d = np.asarray(dates, dtype=np.int32).reshape(t, 3)
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.float32)])
        d = np.concatenate([d, np.repeat(d[-1:], pad, axis=0)])
    mask = np.zeros(num_dates, bool)
    mask[t:] = True
    return {name: torch.from_numpy(np.ascontiguousarray(x)),
            f"{name}_dates": torch.from_numpy(np.ascontiguousarray(d)),
            f"{name}_mask": torch.from_numpy(mask)}


def item_rng(train: bool) -> np.random.Generator | None:
    """A generator for random choices in training, seeded from torch's RNG (seeded per
    DataLoader worker and by ``seed_everything``), None in evaluation."""
    if not train:
        return None
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def flip_item(item: dict[str, torch.Tensor], rng: np.random.Generator, keys: list[str]) -> None:
    """Random H-flip, W-flip and H<->W transpose, the same for every raster in ``keys``
    (tensors whose last two axes are H, W), in place (official: transform_rasters; applied in
    training only here)."""
    ops = rng.integers(0, 2, size=3)
    for k in keys:
        x = item[k]
        if ops[0]:
            x = x.flip(-2)
        if ops[1]:
            x = x.flip(-1)
        if ops[2]:
            x = x.transpose(-2, -1)
        item[k] = x.contiguous()
