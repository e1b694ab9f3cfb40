"""TreeSatAI-TS (Ahlswede et al. 2023, time-series version) in its published layout.

Layout under ``root``: ``{split}.csv`` (columns ``aerial_name, sen_name, aerial_date`` then one
area fraction per genus; the class order is the column order), ``aerial/<aerial_name>`` (GeoTIFF
304x304 px, 4 bands, 0.2 m), ``sentinel-ts/<sen_name>`` (HDF5 with ``sen-2-data`` [T,10,6,6],
``sen-2-masks`` [T,2,6,6] (snow, cloud probability 0-100), ``sen-2-products``,
``sen-1-asc-data``/``sen-1-des-data`` [T,2,6,6] linear VV, VH (may hold NaN) and their
``*-products``). Facts from official: maestro/dataset/treesatai_ts.py and
maestro/conf/dataset/treesatai_ts.py (see shared/reference/maestro-official-facts.md s.4).

Items: ``aerial`` [1,4,300,300] /255 (file order, centre 300 px), ``s2`` [16,10,6,6] /5000,
``s1_asc``, ``s1_desc`` [4,2,6,6] log then /5; ``ref_date`` = aerial date; ``target`` float32
[15] = genus area fraction > 0.07.
"""
from __future__ import annotations

import csv
import os

import h5py
import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset

from .base import (ModalityInfo, class_list, flip_item, item_rng, selected_infos,
                   series_item)
from engine.modalities import S2_BANDS  # also this dataset's S2 bands, in that order
from engine.preprocessing.dates import date_triplet as triplet
from engine.preprocessing.dates import date_triplets as triplets
from engine.preprocessing.dates import parse_yyyymmdd, product_date
from .scaling import Scaling
from .selection import cloudy_pixels, select_dates

CLASSES = ("Betula", "Cleared", "Quercus", "Larix", "Fraxinus", "Alnus", "Pseudotsuga", "Prunus",
           "Fagus", "Acer", "Abies", "Pinus", "Tilia", "Picea", "Populus")
#: A genus is present when it covers more than this fraction of the plot.
LABEL_THRESHOLD = 0.07
AERIAL_FILE_PX = 304
AERIAL_PX = 300
# Distinct colours for the 15 genera (tab20-like), for the exported model's legend.
COLORS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
          "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f")

MODALITIES = {
    # aerial band order as in the file: IR, G, B, R (per torchgeo; used as is officially).
    "aerial": ModalityInfo("aerial", ("NIR", "G", "B", "R"), 0.2, AERIAL_PX, 1, Scaling(255.0)),
    "s2": ModalityInfo("s2", S2_BANDS, 10.0, 6, 16, Scaling(5000.0)),
    "s1_asc": ModalityInfo("s1_asc", ("VV", "VH"), 10.0, 6, 4, Scaling(5.0, log=True), "s1"),
    "s1_desc": ModalityInfo("s1_desc", ("VV", "VH"), 10.0, 6, 4, Scaling(5.0, log=True), "s1"),
}
_H5 = {"s2": ("sen-2-data", "sen-2-products", "sen-2-masks"),
       "s1_asc": ("sen-1-asc-data", "sen-1-asc-products", None),
       "s1_desc": ("sen-1-des-data", "sen-1-des-products", None)}


class TreeSatAITS(Dataset):
    """TreeSatAI-TS multilabel classification samples.

    Args:
        root: dataset folder (layout above).
        split: ``train``, ``val`` or ``test`` (reads ``{split}.csv``); a list reads several.
        modalities: which inputs to yield (subset of ``aerial, s2, s1_asc, s1_desc``).
        num_dates: dates per time series (official: s2 16, s1 4).
        train: random date per bin and random flips; otherwise deterministic.
        mask_threshold: S2 mask value (0-100) above which a pixel is cloudy/snowy.
        patch_px: the model's patch per modality (``{"s2": 2, ...}``): token masks [T, L]
            and partial tokens filled (contract version 2); None: date masks [T] (version 1).
    """

    def __init__(self, root: str, split: str | list[str] = "train",
                 modalities: list[str] | None = None, num_dates: dict[str, int] | None = None,
                 train: bool = False, mask_threshold: float = 0.0,
                 patch_px: dict[str, int] | None = None):
        self.root = root
        self.modalities = list(modalities or MODALITIES)
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"TreeSatAI-TS has no modality {sorted(unknown)}; "
                             f"known: {list(MODALITIES)}")
        self.num_dates = {m: MODALITIES[m].num_dates for m in self.modalities}
        self.num_dates.update(num_dates or {})
        self.train = train
        self.patch_px = dict(patch_px or {})
        self.mask_threshold = mask_threshold
        self.rows = []
        for s in [split] if isinstance(split, str) else split:
            self.rows.extend(self._read_csv(os.path.join(root, f"{s}.csv")))
        if not self.rows:
            raise ValueError(f"TreeSatAI-TS split {split!r} under {root} is empty")

    @staticmethod
    def _read_csv(path: str) -> list[dict]:
        if not os.path.exists(path):
            raise FileNotFoundError(f"TreeSatAI-TS split file not found: {path}")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("aerial_name", "sen_name", "aerial_date", *CLASSES)
                       if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing columns {missing}")
            return [{"aerial": r["aerial_name"], "sen": r["sen_name"],
                     "date": parse_yyyymmdd(r["aerial_date"]),
                     "fractions": np.array([float(r[c]) for c in CLASSES], np.float32)}
                    for r in reader]

    def info(self) -> list[ModalityInfo]:
        return selected_infos(MODALITIES, self.modalities, self.num_dates)

    @staticmethod
    def classes() -> list[dict]:
        return class_list(CLASSES, COLORS)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        rng = item_rng(self.train)
        item: dict[str, torch.Tensor] = {}
        if "aerial" in self.modalities:
            item.update(series_item("aerial", self._aerial(row["aerial"]),
                                    triplets([row["date"]]), 1, self.patch_px.get("aerial")))
        series = [m for m in self.modalities if m in _H5]
        if series:
            path = os.path.join(self.root, "sentinel-ts", row["sen"])
            with h5py.File(path, "r") as h5:
                for m in series:
                    item.update(self._series(h5, m, rng, path))
        item["ref_date"] = torch.tensor(triplet(row["date"]), dtype=torch.int32)
        item["target"] = torch.from_numpy((row["fractions"] > LABEL_THRESHOLD).astype(np.float32))
        if rng is not None:
            flip_item(item, rng, self.modalities)
        return item

    def _aerial(self, name: str) -> np.ndarray:
        path = os.path.join(self.root, "aerial", name)
        shift = (AERIAL_FILE_PX - AERIAL_PX) // 2  # centre crop, as the official shift of 2
        with rasterio.open(path) as src:
            if src.count != 4 or src.width < AERIAL_PX + shift or src.height < AERIAL_PX + shift:
                raise ValueError(f"{path}: expected a 4-band aerial image of {AERIAL_FILE_PX} px, "
                                 f"got {src.count} bands {src.width}x{src.height}")
            x = src.read(window=Window(shift, shift, AERIAL_PX, AERIAL_PX))
        return MODALITIES["aerial"].scaling.apply(x)[None]       # [1, 4, 300, 300]

    def _series(self, h5: h5py.File, m: str, rng, path: str) -> dict[str, torch.Tensor]:
        data_key, prod_key, mask_key = _H5[m]
        if data_key not in h5:
            raise KeyError(f"{path}: no '{data_key}' dataset")
        data = h5[data_key][()]                                   # [T, C, 6, 6]
        dates = triplets([product_date(p) for p in h5[prod_key][()]])
        cloudy = None
        if mask_key is not None and mask_key in h5:
            cloudy = cloudy_pixels(h5[mask_key][()], self.mask_threshold)
        keep = select_dates(data, self.num_dates[m], rng, cloudy)
        x = MODALITIES[m].scaling.apply(data[keep])
        return series_item(m, x, dates[keep], self.num_dates[m], self.patch_px.get(m))
