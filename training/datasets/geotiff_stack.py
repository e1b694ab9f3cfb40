"""Generic GeoTIFF time stacks: what a QGIS user has (one raster per date and modality).

Each modality is a set of GeoTIFFs, one per date (a glob under ``root``), dated and checked by
the engine's own code (:mod:`engine.preprocessing.dates`: sensor tags, then file name; a date
only from TIFFTAG_DATETIME, an ambiguous name, the same file or content twice refused). Each file's bands are matched to
the modality's band names and its GDAL scale/offset applied by the engine's read plan
(:func:`engine.preprocessing.reading.plan_read`, as ``engine.stack.open_slice``; explicit
``band_indexes`` skip the name matching). Pixels are read with nodata (the raster's nodata
value, mask band, outside the raster, non-finite) as NaN and turned into model inputs by
:func:`engine.preprocessing.tokens.model_input` (scaling, token mask, partial-token fill), the
function the engine's runner calls, so an item equals the engine's input for the same tile bit
for bit. Optional per-date cloud masks (one raster per date, matched by date) steer the date
selection. A label raster gives the
segmentation target; ``classes`` maps its values to class ids (the list order).

Items are crops of ``tile_px`` pixels of the reference modality, inside a rectangular
``region`` of the reference raster (a spatial split: e.g. columns 0-63 for training, 64-99 for
the held-out set). Training draws ``samples_per_epoch`` random crops; evaluation covers the
region with a regular grid (stride ``stride``, the last row/column of tiles flush with the
region's end). Other modalities are read for the same ground footprint on their own grid
(``tile_px * gsd_ref / gsd_m`` pixels), reprojected with a WarpedVRT when their CRS differs.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds
from torch.utils.data import Dataset

from engine.contract import Scaling as ContractScaling
from engine.preprocessing.dates import (check_stack_dates, date_triplets, find_slice_date,
                                       single_date_drops_tiff)
from engine.preprocessing.radiometry import (declared_add_offsets, implied_nodata,
                                             plan_calibration)
from engine.preprocessing.reading import ReadPlan, declares_nodata, plan_read
from engine.preprocessing.tokens import model_input

from .base import IGNORE_INDEX, ModalityInfo, flip_item, item_rng
from .scaling import Scaling
from .selection import cloudy_pixels, select_dates


@dataclass
class StackModality:
    """One modality of a GeoTIFF stack.

    Attributes:
        name: contract name (``s2``, ``dem``...).
        files: glob (relative to the dataset root) matching one GeoTIFF per date.
        bands: band names, one per band read.
        band_indexes: 1-based bands to read from each file (default: the bands matched to
            ``bands`` by name, or all of them when the files name no bands).
        divisor, log: constant scaling (see :class:`.scaling.Scaling`).
        num_dates: date slots per item; longer series are subsampled by bins.
        cloud_masks: glob of per-date cloud masks (matched by date), or None.
        mask_threshold: mask value above which a pixel is cloudy.
        resampling: rasterio resampling name used when a file's grid differs from the
            modality's (default bilinear, as the engine warps: engine.align).
        group: fusion group.
    """

    name: str
    files: str
    bands: list[str]
    band_indexes: list[int] | None = None
    divisor: float = 1.0
    log: bool = False
    num_dates: int = 1
    cloud_masks: str | None = None
    mask_threshold: float = 0.0
    resampling: str = "bilinear"
    group: str | None = None


@dataclass
class _Files:
    paths: list[str]
    dates: np.ndarray                  # int32 [T, 3]
    masks: list[str | None] = field(default_factory=list)
    plans: list[ReadPlan] = field(default_factory=list)


class GeoTiffStack(Dataset):
    """Crops of GeoTIFF time stacks (segmentation with ``labels``, or pretraining without).

    Args:
        root: folder the globs are relative to.
        modalities: list of :class:`StackModality` (or dicts of its fields).
        reference: name of the modality whose grid defines crops and the target grid.
        tile_px: crop side on the reference grid, pixels.
        labels: label raster (relative to root) on any grid covering the reference, or None.
        classes: ``[{"value": raster value, "name": ..., "color": "#rrggbb"}, ...]``; the class
            id is the list index; other values (and nodata) become -1 (ignored).
        region: ``{"rows": [r0, r1], "cols": [c0, c1]}``, half-open pixel ranges of the
            reference raster the crops stay in (default: all of it).
        train: random crops, random dates per bin and flips; else a deterministic grid.
        samples_per_epoch: random crops per epoch in training.
        stride: grid step in evaluation (default ``tile_px``).
        patch_px: the model's patch per modality (``{"s2": 4, "dem": 2}``): token masks
            [T, L] and partial tokens filled (contract version 2); a modality without one
            gets a date mask [T] (padding only) and nodata set to 0 (version 1).
        fill_value: the contract's ``nodata.fill_value``.
    """

    def __init__(self, root: str, modalities: list, reference: str, tile_px: int,
                 labels: str | None = None, classes: list[dict] | None = None,
                 region: dict | None = None, train: bool = False, samples_per_epoch: int = 64,
                 stride: int | None = None, patch_px: dict[str, int] | None = None,
                 fill_value: float = 0.0):
        self.root = root
        self.mods = [m if isinstance(m, StackModality) else StackModality(**m) for m in modalities]
        names = [m.name for m in self.mods]
        if reference not in names:
            raise ValueError(f"reference modality {reference!r} is not among {names}")
        self.reference = reference
        self.tile_px = int(tile_px)
        self.train = train
        self.samples_per_epoch = int(samples_per_epoch)
        self.patch_px = dict(patch_px or {})
        self.fill_value = float(fill_value)
        self.labels = os.path.join(root, labels) if labels else None
        self.class_list = list(classes or [])
        self.files = {m.name: self._index(m) for m in self.mods}
        with rasterio.open(self.files[reference].paths[0]) as src:
            self.ref_crs, self.ref_transform = src.crs, src.transform
            self.ref_shape = (src.height, src.width)
        self.gsd_ref = abs(self.ref_transform.a)
        self.gsd = {}
        for m in self.mods:
            with rasterio.open(self.files[m.name].paths[0]) as src:
                self.gsd[m.name] = abs(src.transform.a)
        rows = (region or {}).get("rows", [0, self.ref_shape[0]])
        cols = (region or {}).get("cols", [0, self.ref_shape[1]])
        self.rows, self.cols = (int(rows[0]), int(rows[1])), (int(cols[0]), int(cols[1]))
        for (a, b), n, what in ((self.rows, self.ref_shape[0], "rows"),
                                (self.cols, self.ref_shape[1], "cols")):
            if not (0 <= a < b <= n):
                raise ValueError(f"region {what} {[a, b]} is outside the reference raster (0..{n})")
            if b - a < self.tile_px:
                raise ValueError(f"region {what} {[a, b]} is narrower than tile_px {self.tile_px}")
        s = int(stride or self.tile_px)
        self.grid = [(r, c) for r in _starts(*self.rows, self.tile_px, s)
                     for c in _starts(*self.cols, self.tile_px, s)]
        self.ref_date = self.files[reference].dates[0]

    # ------------------------------------------------------------------ index
    def _index(self, m: StackModality) -> _Files:
        paths = sorted(glob.glob(os.path.join(self.root, m.files)))
        if not paths:
            raise FileNotFoundError(f"modality {m.name!r}: no file matches {m.files!r} under "
                                    f"{self.root}")
        found = [find_slice_date(p) for p in paths]
        if single_date_drops_tiff(found, m.num_dates):      # as engine.stack.collect_stack
            found = [None]
        undated = [p for p, f in zip(paths, found) if f is None]
        if undated and len(paths) > 1:
            raise ValueError(f"modality {m.name!r}: no date in the tags or the name of "
                             f"{', '.join(undated)}")
        check_stack_dates(m.name, [(p, f.when if f else None, f.source if f else "")
                                   for p, f in zip(paths, found)])
        dated = [(f.when if f else None, p) for f, p in zip(found, paths)]
        if all(d is not None for d, _ in dated):
            dated.sort()
        masks: list[str | None] = [None] * len(dated)
        if m.cloud_masks:
            by_date = {}
            for p in sorted(glob.glob(os.path.join(self.root, m.cloud_masks))):
                d = find_slice_date(p)
                if d is not None:
                    by_date[d.when.date()] = p
            masks = [by_date.get(d.date()) if d is not None else None for d, _ in dated]
        dates = date_triplets([d for d, _ in dated]) if dated[0][0] is not None else None
        ordered = [p for _, p in dated]
        return _Files(ordered, dates, masks, [self._plan(m, p) for p in ordered])

    @staticmethod
    def _plan(m: StackModality, path: str) -> ReadPlan:
        """Bands and calibration of one file, as the engine plans them (no value checks:
        the training data defines the model's range)."""
        nb = len(m.bands)
        spec = type("Spec", (), dict(
            name=m.name, bands=tuple(m.bands), radiometry=None,
            scaling=ContractScaling("log" if m.log else "none", (0.0,) * nb,
                                    (float(m.divisor),) * nb)))()
        with rasterio.open(path) as src:
            if m.band_indexes is None:
                return plan_read(src, spec, path, check=False)
            idx = tuple(int(i) for i in m.band_indexes)
            cal = plan_calibration([src.scales[i - 1] for i in idx],
                                   [src.offsets[i - 1] for i in idx], spec, path=path,
                                   add_offsets=declared_add_offsets(
                                       src.tags(), [src.tags(i) for i in idx], spec.bands))
            declared = declares_nodata(src, idx)
        zero, valid, _ = implied_nodata(spec, [], declared=declared)
        return ReadPlan(idx, cal.with_nodata(zero, valid))

    def info(self) -> list[ModalityInfo]:
        out = []
        for m in self.mods:
            tile = int(round(self.tile_px * self.gsd_ref / self.gsd[m.name]))
            out.append(ModalityInfo(m.name, tuple(m.bands), float(self.gsd[m.name]), tile,
                                    m.num_dates, Scaling(m.divisor, m.log), m.group))
        return out

    def classes(self) -> list[dict]:
        return [{"id": i, "name": c["name"], "color": c.get("color", "#808080")}
                for i, c in enumerate(self.class_list)]

    def __len__(self) -> int:
        return self.samples_per_epoch if self.train else len(self.grid)

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = item_rng(self.train)
        if rng is not None:
            r = int(rng.integers(self.rows[0], self.rows[1] - self.tile_px + 1))
            c = int(rng.integers(self.cols[0], self.cols[1] - self.tile_px + 1))
        else:
            r, c = self.grid[index]
        bounds = rasterio.windows.bounds(Window(c, r, self.tile_px, self.tile_px),
                                         self.ref_transform)
        item: dict[str, torch.Tensor] = {}
        for m in self.mods:
            item.update(self._modality(m, bounds, rng))
        item["ref_date"] = torch.from_numpy(self.ref_date.astype(np.int32))
        if self.labels:
            item["target"] = torch.from_numpy(self._target(bounds))
        if rng is not None:
            flip_item(item, rng, [m.name for m in self.mods] + (["target"] if self.labels else []))
        return item

    def _read(self, path: str, bounds, size: int, indexes, resampling: str,
              nodata_nan: bool = True) -> np.ndarray:
        """[C, size, size] of the window ``bounds``; ``nodata_nan``: float32 with NaN where
        any band is nodata (nodata value, mask band, outside the raster, non-finite), as the
        engine reads (engine.align); else the raw values, 0 outside."""
        with rasterio.open(path) as src:
            ds = src if src.crs == self.ref_crs else WarpedVRT(src, crs=self.ref_crs)
            try:
                win = from_bounds(*bounds, transform=ds.transform)
                shape = (len(indexes) if indexes else ds.count, size, size)
                data = ds.read(indexes, window=win, out_shape=shape,
                               resampling=Resampling[resampling], boundless=True, fill_value=0,
                               masked=nodata_nan)
            finally:
                if ds is not src:
                    ds.close()
        if not nodata_nan:
            return data
        out = np.asarray(data.data, dtype=np.float32).copy()
        out[:, np.ma.getmaskarray(data).any(axis=0)] = np.nan
        out[:, ~np.isfinite(out).all(axis=0)] = np.nan
        return out

    def _read_masked(self, path: str, bounds, size: int, indexes, resampling: str,
                     calibration) -> np.ndarray:
        """:meth:`_read` for a raster whose calibration takes some values as nodata (DEM voids
        outside its ``valid_range``, Sentinel-2's undeclared 0): those values, declared nodata
        and masked pixels are set to NaN at the raster's own resolution first, then the window
        is resampled (``rasterio.warp.reproject``, NaN as nodata: left out of the kernel), so a
        void is never blended into its neighbours (as engine.align does). A file already on the
        window's grid is read by :meth:`_read` (nothing to resample)."""
        from rasterio.transform import from_bounds as transform_from_bounds
        from rasterio.warp import reproject, transform_bounds
        from rasterio.windows import transform as window_transform

        with rasterio.open(path) as src:
            src_bounds = bounds if src.crs == self.ref_crs else transform_bounds(
                self.ref_crs, src.crs, *bounds, densify_pts=21)
            win = from_bounds(*src_bounds, transform=src.transform)
            same_grid = (src.crs == self.ref_crs and abs(win.width - size) < 1e-6
                         and abs(win.height - size) < 1e-6
                         and abs(win.col_off - round(win.col_off)) < 1e-6
                         and abs(win.row_off - round(win.row_off)) < 1e-6)
        if same_grid:                               # nothing resampled: the plain read
            return self._read(path, bounds, size, indexes, resampling)
        with rasterio.open(path) as src:
            ratio = max(1.0, win.width / size, win.height / size)
            pad = int(np.ceil(2 * ratio)) + 3                  # the resampling kernel's reach
            win = Window(int(np.floor(win.col_off)) - pad, int(np.floor(win.row_off)) - pad,
                         int(np.ceil(win.width)) + 2 * pad, int(np.ceil(win.height)) + 2 * pad)
            data = src.read(indexes, window=win, boundless=True, fill_value=0, masked=True)
            raw = np.asarray(data.data, dtype=np.float32).copy()
            raw[:, np.ma.getmaskarray(data).any(axis=0)] = np.nan
            raw[:, ~np.isfinite(raw).all(axis=0)] = np.nan
            raw[np.isnan(calibration.apply(raw.copy()))] = np.nan
            out = np.full((raw.shape[0], size, size), np.nan, dtype=np.float32)
            reproject(raw, out, src_transform=window_transform(win, src.transform),
                      src_crs=src.crs, src_nodata=np.nan,
                      dst_transform=transform_from_bounds(*bounds, size, size),
                      dst_crs=self.ref_crs, dst_nodata=np.nan,
                      resampling=Resampling[resampling])
        out[:, ~np.isfinite(out).all(axis=0)] = np.nan
        return out

    def _modality(self, m: StackModality, bounds, rng) -> dict[str, torch.Tensor]:
        files = self.files[m.name]
        size = int(round(self.tile_px * self.gsd_ref / self.gsd[m.name]))
        stack = np.stack([plan.calibration.apply(
            self._read_masked(p, bounds, size, list(plan.indexes), m.resampling, plan.calibration)
            if (plan.calibration.valid_range is not None or plan.calibration.zero_nodata)
            and m.resampling != "nearest"
            else self._read(p, bounds, size, list(plan.indexes), m.resampling))
            for p, plan in zip(files.paths, files.plans)])  # [T, C, h, w]
        if stack.shape[1] != len(m.bands):
            raise ValueError(f"modality {m.name!r}: files have {stack.shape[1]} bands, "
                             f"{len(m.bands)} band names given")
        cloudy = None
        if any(files.masks):
            cloudy = np.zeros((len(files.paths), *stack.shape[-2:]), bool)
            for i, p in enumerate(files.masks):
                if p is not None:
                    mk = self._read(p, bounds, size, None, "nearest", nodata_nan=False)
                    cloudy[i] = cloudy_pixels(mk[None], m.mask_threshold)[0]
        keep = select_dates(stack, m.num_dates, rng, cloudy)
        dates = files.dates[keep] if files.dates is not None else \
            np.repeat(self.ref_date[None], len(keep), axis=0)
        return self._series(m, stack[keep], dates)

    def _series(self, m: StackModality, raw: np.ndarray, dates: np.ndarray
                ) -> dict[str, torch.Tensor]:
        """The modality's entries from raw pixels [t, C, h, w] (NaN = nodata), padded to
        ``m.num_dates`` slots (padding: ``fill_value``, last date repeated, mask True)."""
        t, pad = raw.shape[0], m.num_dates - raw.shape[0]
        sc = Scaling(m.divisor, m.log).contract(raw.shape[1])
        patch = self.patch_px.get(m.name)
        x, mask, _ = model_input(raw, sc["transform"], sc["mean"], sc["std"], patch or 1,
                                 self.fill_value, token_masks=bool(patch))
        if not patch:
            mask = np.zeros(t, bool)                   # version 1: only padding is masked
        d = np.asarray(dates, dtype=np.int32).reshape(t, 3)
        if pad:
            x = np.concatenate([x, np.full((pad, *x.shape[1:]), self.fill_value, np.float32)])
            d = np.concatenate([d, np.repeat(d[-1:], pad, axis=0)])
            mask = np.concatenate([mask, np.ones((pad, *mask.shape[1:]), bool)])
        return {m.name: torch.from_numpy(x), f"{m.name}_dates": torch.from_numpy(d),
                f"{m.name}_mask": torch.from_numpy(np.ascontiguousarray(mask))}

    def _target(self, bounds) -> np.ndarray:
        with rasterio.open(self.labels) as src:
            nodata = src.nodata
        raw = self._read(self.labels, bounds, self.tile_px, [1], "nearest", nodata_nan=False)[0]
        out = np.full(raw.shape, IGNORE_INDEX, np.int64)
        for i, c in enumerate(self.class_list):
            out[raw == c["value"]] = i
        if nodata is not None:
            out[raw == nodata] = IGNORE_INDEX
        return out


def _starts(a: int, b: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering [a, b): every ``stride``, the last flush with ``b``."""
    starts = list(range(a, b - tile + 1, stride))
    if starts[-1] + tile < b:
        starts.append(b - tile)
    return starts
