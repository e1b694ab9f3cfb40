"""PASTIS-HD (Garnot et al. 2021 PASTIS + SPOT6 from Astruc et al. 2024) in its published layout.

Layout under ``root``: ``metadata.geojson`` (one feature per patch with properties ``ID_PATCH``,
``Fold`` and ``dates-S2``, ``dates-S1A``, ``dates-S1D``: objects ``{"0": YYYYMMDD, ...}``),
``DATA_S2/S2_<id>.npy`` [T,10,128,128], ``DATA_S1A/S1A_<id>.npy`` and ``DATA_S1D/S1D_<id>.npy``
[T,3,128,128], ``DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/SPOT6_RVB_1M00_2019_<id>.tif`` (3 bands,
1280 px at 1 m), ``ANNOTATIONS/TARGET_<id>.npy`` [3,128,128] (channel 0: class 0-18, 19 = void).
Split: ``{split}[_fold_<k>].csv`` with a column ``image`` (the MAESTRO split files) when
present, else the metadata ``Fold`` values given in ``folds``.
Facts: official maestro/dataset/pastis_hd.py and maestro/conf/dataset/pastis_hd.py: 160 m crops
(S2 16 px, SPOT 160 px), ``repeats`` 8 (an 8x8 grid of crops in evaluation, random crops in
training), S2 /10000 (16 dates), S1 first 2 channels /20 without log (4 dates), SPOT /255 dated
2019-07-01 which is also ``ref_date``; ``target`` int64 [16,16], void -> -1.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset

from .base import IGNORE_INDEX, ModalityInfo, flip_item, item_rng, series_item
from .crops import crop_start
from engine.modalities import S2_BANDS  # also this dataset's S2 bands, in that order
from engine.preprocessing.dates import date_triplet as triplet
from engine.preprocessing.dates import date_triplets as triplets
from engine.preprocessing.dates import parse_yyyymmdd
from .scaling import Scaling
from .selection import select_dates

CLASSES = ("background", "meadow", "soft winter wheat", "corn", "winter barley",
           "winter rapeseed", "spring barley", "sunflower", "grapevine", "beet",
           "winter triticale", "winter durum wheat", "fruits, vegetables, flowers", "potatoes",
           "leguminous fodder", "soybeans", "orchard", "mixed cereal", "sorghum")
COLORS = ("#000000", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
          "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
          "#bcbd22", "#dbdb8d", "#17becf")
VOID = 19
SPOT_DATE = dt.date(2019, 7, 1)
TILE_M = 1280           # a PASTIS patch is 128 px at 10 m
# name -> (ModalityInfo for a 160 m crop, gsd, folder, file prefix, metadata dates key)
MODALITIES = {
    "spot": ModalityInfo("spot", ("R", "G", "B"), 1.0, 160, 1, Scaling(255.0)),
    "s2": ModalityInfo("s2", S2_BANDS, 10.0, 16, 16, Scaling(10000.0)),
    "s1_asc": ModalityInfo("s1_asc", ("VV", "VH"), 10.0, 16, 4, Scaling(20.0), "s1"),
    "s1_desc": ModalityInfo("s1_desc", ("VV", "VH"), 10.0, 16, 4, Scaling(20.0), "s1"),
}
_NPY = {"s2": ("DATA_S2", "S2", "dates-S2"), "s1_asc": ("DATA_S1A", "S1A", "dates-S1A"),
        "s1_desc": ("DATA_S1D", "S1D", "dates-S1D")}


def _dates(value) -> np.ndarray:
    """int32 [T, 3] from a PASTIS ``{"0": YYYYMMDD, ...}`` object (or its JSON text)."""
    if isinstance(value, str):
        value = json.loads(value)
    return triplets([parse_yyyymmdd(value[str(i)]) for i in range(len(value))])


class PastisHD(Dataset):
    """PASTIS-HD semantic segmentation crops.

    Args:
        root: dataset folder (layout above).
        split: ``train``/``val``/``test`` (split CSV) when ``folds`` is None.
        folds: metadata ``Fold`` values to use instead of a split CSV.
        fold: k of ``{split}_fold_<k>.csv``.
        modalities: subset of ``spot, s2, s1_asc, s1_desc``.
        crop_m: crop side in metres (official 160).
        repeats: crops per side in evaluation (official 8 = 1280 / 160).
        num_dates: dates per series (official: s2 16, s1 4).
        train: random crop, random date per bin, flips.
        patch_px: the model's patch per modality (``{"s2": 2, ...}``): token masks [T, L]
            and partial tokens filled (contract version 2); None: date masks [T] (version 1).
    """

    def __init__(self, root: str, split: str = "train", folds: list[int] | None = None,
                 fold: int | None = None, modalities: list[str] | None = None,
                 crop_m: int = 160, repeats: int = 8, num_dates: dict[str, int] | None = None,
                 train: bool = False, patch_px: dict[str, int] | None = None):
        self.root = root
        self.modalities = list(modalities or MODALITIES)
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"PASTIS-HD has no modality {sorted(unknown)}")
        if TILE_M % crop_m or crop_m % 10:
            raise ValueError(f"crop_m {crop_m} must divide {TILE_M} and be a multiple of 10 m")
        self.crop_m, self.repeats, self.train = crop_m, repeats, train
        self.patch_px = dict(patch_px or {})
        self.num_dates = {m: MODALITIES[m].num_dates for m in self.modalities}
        self.num_dates.update(num_dates or {})
        meta_path = os.path.join(root, "metadata.geojson")
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f"PASTIS-HD metadata not found: {meta_path}")
        with open(meta_path) as f:
            features = json.load(f)["features"]
        self.meta = {str(ft["properties"]["ID_PATCH"]): ft["properties"] for ft in features}
        if folds is not None:
            self.ids = [i for i, p in self.meta.items() if int(p["Fold"]) in set(folds)]
        else:
            name = f"{split}_fold_{fold}.csv" if fold else f"{split}.csv"
            path = os.path.join(root, name)
            if not os.path.exists(path):
                raise FileNotFoundError(f"PASTIS-HD split file not found: {path} (or give folds)")
            with open(path, newline="") as f:
                self.ids = [str(r["image"]) for r in csv.DictReader(f)]
            missing = [i for i in self.ids if i not in self.meta]
            if missing:
                raise ValueError(f"{path}: patches {missing[:5]} are not in metadata.geojson")
        if not self.ids:
            raise ValueError(f"PASTIS-HD: no patch selected under {root}")

    def info(self) -> list[ModalityInfo]:
        out = []
        for m in self.modalities:
            i = MODALITIES[m]
            out.append(ModalityInfo(i.name, i.bands, i.gsd_m, int(self.crop_m / i.gsd_m),
                                    self.num_dates[m], i.scaling, i.group))
        return out

    @staticmethod
    def classes() -> list[dict]:
        return [{"id": i, "name": n, "color": c} for i, (n, c) in enumerate(zip(CLASSES, COLORS))]

    def __len__(self) -> int:
        return len(self.ids) * (1 if self.train else self.repeats ** 2)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = item_rng(self.train)
        # Crop positions in 10 m units (the S2 grid).
        sample, (r, c) = crop_start(index, len(self.ids), self.repeats, TILE_M // 10,
                                    self.crop_m // 10, rng)
        pid = self.ids[sample]
        n = self.crop_m // 10
        item: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            if m == "spot":
                path = os.path.join(self.root, "DATA_SPOT", "PASTIS_SPOT6_RVB_1M00_2019",
                                    f"SPOT6_RVB_1M00_2019_{pid}.tif")
                with rasterio.open(path) as src:
                    x = src.read([1, 2, 3], window=Window(c * 10, r * 10, n * 10, n * 10))
                item.update(series_item(m, MODALITIES[m].scaling.apply(x)[None],
                                        triplets([SPOT_DATE]), 1, self.patch_px.get(m)))
                continue
            folder, prefix, key = _NPY[m]
            arr = np.load(os.path.join(self.root, folder, f"{prefix}_{pid}.npy"), mmap_mode="r")
            nb = len(MODALITIES[m].bands)
            x = np.asarray(arr[:, :nb, r:r + n, c:c + n], dtype=np.float32)   # [T, C, n, n]
            dates = _dates(self.meta[pid][key])
            if len(dates) != x.shape[0]:
                raise ValueError(f"PASTIS-HD patch {pid}: {x.shape[0]} {m} images but "
                                 f"{len(dates)} dates in metadata")
            keep = select_dates(x, self.num_dates[m], rng)
            item.update(series_item(m, MODALITIES[m].scaling.apply(x[keep]), dates[keep],
                                    self.num_dates[m], self.patch_px.get(m)))
        item["ref_date"] = torch.tensor(triplet(SPOT_DATE), dtype=torch.int32)
        tgt = np.load(os.path.join(self.root, "ANNOTATIONS", f"TARGET_{pid}.npy"), mmap_mode="r")
        t = np.asarray(tgt[0, r:r + n, c:c + n]).astype(np.int64)
        t[t == VOID] = IGNORE_INDEX
        item["target"] = torch.from_numpy(t)
        if rng is not None:
            flip_item(item, rng, self.modalities + ["target"])
        return item
