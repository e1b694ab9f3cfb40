"""FLAIR-HUB (IGN, 2025) in its published layout.

Files: ``<domain>_<MODALITY>/<area>/<domain>_<MODALITY>_<area>_<pos>.tif`` for a patch id
``<domain>_<area>_<pos>``, with MODALITY in ``AERIAL_RGBI`` (4 bands R,G,B,NIR, 512 px at 0.2 m),
``DEM_ELEV`` (2 bands DSM, DTM), ``SENTINEL2_TS`` (T x 10 bands, 10 px at 10.24 m),
``SENTINEL2_MSK-SC`` (T x 2 bands: snow, cloud), ``SENTINEL1-ASC_TS``/``SENTINEL1-DESC_TS``
(T x 2 bands), ``AERIAL_LABEL-COSIA`` (1 band, classes 0-18). Dates: ``GLOBAL_ALL_MTD/
GLOBAL_AERIAL_MTD_DATES.gpkg`` (fields ``patch_id``, ``date`` YYYYMMDD) and
``GLOBAL_<SENTINEL2|SENTINEL1-ASC|SENTINEL1-DESC>_MTD_DATES.gpkg`` (fields ``patch_id``,
``acquisition_dates``: JSON ``{"1": "YYYYMMDD", ...}``, one row per zone ``<domain>_<area>``).
Split: ``{split}.csv`` with a column ``patch_id``.
Facts: official maestro/dataset/flair.py, maestro/conf/dataset/flair.py; COSIA classes from
IGNF/FLAIR-HUB configs/train/config_supervision.yaml. Scaling: aerial reordered to NIR,R,G,B
/255, DEM /1000 (DSM, DTM; the height above ground is derived inside the model, as officially),
S2 /5000 (16 dates, cloudy dates avoided with the mask), S1 log then /5 (4 dates). COSIA classes
15-18 (clear cut, ligneous, mixed, undefined) are ignored (-1). ``ref_date`` = aerial date.
"""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import rasterio
import torch
from torch.utils.data import Dataset

from .base import (IGNORE_INDEX, ModalityInfo, class_list, flip_item, item_rng, selected_infos,
                   series_item)
from engine.modalities import S2_BANDS  # also this dataset's S2 bands, in that order
from engine.preprocessing.dates import date_triplets as triplets
from engine.preprocessing.dates import parse_yyyymmdd
from .scaling import Scaling
from .selection import cloudy_pixels, select_dates

CLASSES = ("building", "greenhouse", "swimming pool", "impervious surface", "pervious surface",
           "bare soil", "water", "snow", "herbaceous vegetation", "agricultural land",
           "plowed land", "vineyard", "deciduous", "coniferous", "brushwood")
COLORS = ("#db0e9a", "#3de6eb", "#ffffff", "#f80c00", "#938e7b", "#a97101", "#1553ae", "#8ab3a0",
          "#55ff00", "#fff30d", "#e4df7c", "#660082", "#46e483", "#f3a60d", "#bd6b1d")
IGNORED = (15, 16, 17, 18)
MODALITIES = {
    "aerial": ModalityInfo("aerial", ("NIR", "R", "G", "B"), 0.2, 512, 1, Scaling(255.0)),
    "dem": ModalityInfo("dem", ("DSM", "DTM"), 0.2, 512, 1, Scaling(1000.0)),
    "s2": ModalityInfo("s2", S2_BANDS, 10.24, 10, 16, Scaling(5000.0)),
    "s1_asc": ModalityInfo("s1_asc", ("VV", "VH"), 10.24, 10, 4, Scaling(5.0, log=True), "s1"),
    "s1_desc": ModalityInfo("s1_desc", ("VV", "VH"), 10.24, 10, 4, Scaling(5.0, log=True), "s1"),
}
FOLDERS = {"aerial": "AERIAL_RGBI", "dem": "DEM_ELEV", "s2": "SENTINEL2_TS",
           "s2_clouds": "SENTINEL2_MSK-SC", "s1_asc": "SENTINEL1-ASC_TS",
           "s1_desc": "SENTINEL1-DESC_TS", "target": "AERIAL_LABEL-COSIA"}
DATE_TABLES = {"aerial": "AERIAL", "s2": "SENTINEL2", "s1_asc": "SENTINEL1-ASC",
               "s1_desc": "SENTINEL1-DESC"}
#: aerial file order R, G, B, NIR -> NIR, R, G, B (official ``bands=[[3, 0, 1, 2]]``).
AERIAL_ORDER = [4, 1, 2, 3]


def read_date_table(path: str, value_field: str) -> dict[str, str]:
    """``patch_id -> value_field`` of a FLAIR-HUB dates GeoPackage (read with OGR)."""
    from osgeo import ogr

    ds = ogr.Open(path)
    if ds is None:
        raise FileNotFoundError(f"FLAIR-HUB dates table not found or unreadable: {path}")
    layer = ds.GetLayer(0)
    out = {}
    for feat in layer:
        out[str(feat.GetField("patch_id"))] = feat.GetField(value_field)
    return out


class FlairHub(Dataset):
    """FLAIR-HUB semantic segmentation tiles (102.4 m, COSIA land cover).

    Args:
        root: dataset folder (layout above).
        split: ``train``/``val``/``test`` (reads ``{split}.csv``).
        modalities: subset of ``aerial, dem, s2, s1_asc, s1_desc``.
        num_dates: dates per series (official: s2 16, s1 4).
        train: random date per bin and flips.
        mask_threshold: S2 mask value above which a pixel is cloudy or snowy.
        patch_px: the model's patch per modality (``{"s2": 2, ...}``): token masks [T, L]
            and partial tokens filled (contract version 2); None: date masks [T] (version 1).
    """

    def __init__(self, root: str, split: str = "train", modalities: list[str] | None = None,
                 num_dates: dict[str, int] | None = None, train: bool = False,
                 mask_threshold: float = 0.0, patch_px: dict[str, int] | None = None):
        self.root, self.train, self.mask_threshold = root, train, mask_threshold
        self.patch_px = dict(patch_px or {})
        self.modalities = list(modalities or MODALITIES)
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"FLAIR-HUB has no modality {sorted(unknown)}")
        self.num_dates = {m: MODALITIES[m].num_dates for m in self.modalities}
        self.num_dates.update(num_dates or {})
        path = os.path.join(root, f"{split}.csv")
        if not os.path.exists(path):
            raise FileNotFoundError(f"FLAIR-HUB split file not found: {path}")
        with open(path, newline="") as f:
            self.ids = [r["patch_id"] for r in csv.DictReader(f)]
        if not self.ids:
            raise ValueError(f"FLAIR-HUB split {path} is empty")
        mtd = os.path.join(root, "GLOBAL_ALL_MTD")
        self.aerial_dates = read_date_table(
            os.path.join(mtd, "GLOBAL_AERIAL_MTD_DATES.gpkg"), "date")
        # Time-series dates are per zone: the first two fields of the table's patch_id.
        self.series_dates = {}
        for m in self.modalities:
            if m in DATE_TABLES and m != "aerial":
                table = read_date_table(
                    os.path.join(mtd, f"GLOBAL_{DATE_TABLES[m]}_MTD_DATES.gpkg"),
                    "acquisition_dates")
                self.series_dates[m] = {"_".join(k.split("_")[:2]): v for k, v in table.items()}

    def info(self) -> list[ModalityInfo]:
        return selected_infos(MODALITIES, self.modalities, self.num_dates)

    @staticmethod
    def classes() -> list[dict]:
        return class_list(CLASSES, COLORS)

    def __len__(self) -> int:
        return len(self.ids)

    def _path(self, key: str, pid: str) -> str:
        domain, area, pos = pid.split("_")
        folder = FOLDERS[key]
        return os.path.join(self.root, f"{domain}_{folder}", area,
                            f"{domain}_{folder}_{area}_{pos}.tif")

    def _read(self, key: str, pid: str, indexes=None) -> np.ndarray:
        path = self._path(key, pid)
        if not os.path.exists(path):
            raise FileNotFoundError(f"FLAIR-HUB {key} file missing for patch {pid}: {path}")
        with rasterio.open(path) as src:
            return src.read(indexes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = item_rng(self.train)
        pid = self.ids[index]
        zone = "_".join(pid.split("_")[:2])
        if pid not in self.aerial_dates:
            raise KeyError(f"FLAIR-HUB patch {pid} has no aerial date")
        aerial_date = triplets([parse_yyyymmdd(self.aerial_dates[pid])])
        item: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            info = MODALITIES[m]
            if m in ("aerial", "dem"):
                x = self._read(m, pid, AERIAL_ORDER if m == "aerial" else None)
                item.update(series_item(m, info.scaling.apply(x)[None], aerial_date, 1,
                                        self.patch_px.get(m)))
                continue
            raw = self._read(m, pid).astype(np.float32)
            nb = len(info.bands)
            x = raw.reshape(raw.shape[0] // nb, nb, *raw.shape[1:])       # [T, C, H, W]
            text = self.series_dates[m].get(zone)
            if text is None:
                raise KeyError(f"FLAIR-HUB zone {zone} has no {m} dates")
            table = json.loads(text) if isinstance(text, str) else text
            dates = triplets([parse_yyyymmdd(table[str(i + 1)]) for i in range(len(table))])
            if len(dates) != x.shape[0]:
                raise ValueError(f"FLAIR-HUB patch {pid}: {x.shape[0]} {m} dates in the file but "
                                 f"{len(dates)} in the dates table")
            cloudy = None
            if m == "s2" and os.path.exists(self._path("s2_clouds", pid)):
                mk = self._read("s2_clouds", pid)
                cloudy = cloudy_pixels(mk.reshape(x.shape[0], -1, *mk.shape[1:]),
                                       self.mask_threshold)
            keep = select_dates(x, self.num_dates[m], rng, cloudy)
            item.update(series_item(m, info.scaling.apply(x[keep]), dates[keep],
                                    self.num_dates[m], self.patch_px.get(m)))
        item["ref_date"] = torch.from_numpy(aerial_date[0])
        t = self._read("target", pid, 1).astype(np.int64)
        t[np.isin(t, IGNORED) | (t < 0) | (t > 18)] = IGNORE_INDEX
        item["target"] = torch.from_numpy(t)
        if rng is not None:
            flip_item(item, rng, self.modalities + ["target"])
        return item
