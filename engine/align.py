"""Reading slices onto each modality's model grid, tile window by tile window.

The model grid of modality ``m`` has the reference raster's CRS and top-left corner and a
pixel ``T / t`` times the reference pixel (``T``, ``t``: reference and ``m`` tile sizes), so a
tile of the reference grid is exactly ``t x t`` pixels of ``m``'s grid on the same ground.
A slice already on that grid (same CRS and transform) is read directly; any other slice
(another CRS, pixel size or extent) is warped by GDAL through a rasterio ``WarpedVRT``
(bilinear; GDAL widens the kernel when downsampling and leaves nodata sources out, including
Sentinel-2 pixels 0 in every band when the raster declares no nodata).

Every read returns float32 ``[bands, rows, cols]``, the model's bands in the model's order
(matched by name, engine.preprocessing.bands), in the model's units (GDAL scale/offset and unit
conversion applied, engine.preprocessing.radiometry), with NaN where the pixel is nodata: equal
to the raster's nodata value, masked by its mask/alpha band, outside its coverage, or not
finite. South-up rasters on the grid are read directly and flipped; GCP-georeferenced rasters
are warped with their GCPs. A failed GDAL read becomes an InputError naming the file, the
band(s) and the window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .stack import Slice, read_errors as _read_errors


@dataclass(frozen=True)
class ModelGrid:
    """A modality's model grid covering the padded tile grid.

    Attributes:
        crs, transform: rasterio CRS and Affine (reference CRS, reference top-left).
        width, height: pixels.
        scale: pixels of this grid per reference pixel (``t / T``).
    """

    crs: Any
    transform: Any
    width: int
    height: int
    scale: float


def model_grid(ref_crs, ref_transform, padded_width: int, padded_height: int, tile_px_ref: int,
               tile_px: int) -> ModelGrid:
    """The model grid of a modality of ``tile_px`` against a reference of ``tile_px_ref``."""
    from affine import Affine

    scale = tile_px / tile_px_ref
    transform = ref_transform * Affine.scale(1.0 / scale)
    return ModelGrid(ref_crs, transform, int(round(padded_width * scale)),
                     int(round(padded_height * scale)), scale)


def _same_grid(sl: Slice, grid: ModelGrid) -> bool:
    return sl.gcps is None and sl.crs == grid.crs and sl.transform.almost_equals(
        grid.transform, precision=1e-9 * max(1.0, abs(grid.transform.a)))


class SliceReader:
    """Reads one slice on a model grid. Use from one thread at a time (GDAL handles).

    Reads the slice's bands in the model's order (``Slice.indexes``), applies its calibration
    (GDAL scale/offset and unit conversion, engine.preprocessing.radiometry) after masking
    nodata, and flips south-up rasters read directly. GCP-georeferenced slices are warped
    window by window with their GCPs (GDAL's GCP polynomial transformer).

    Raises (from the constructor and :meth:`read`):
        InputError: the raster cannot be opened or read, naming the file, the band(s) and
            the window.
    """

    def __init__(self, sl: Slice, grid: ModelGrid):
        from .preprocessing.reading import open_raster

        self.slice = sl
        self.grid = grid
        self.direct = _same_grid(sl, grid)
        self.indexes = sl.band_indexes
        self._vrt = None
        try:
            self._src = open_raster(sl.path)
        except _read_errors() as exc:
            raise InputError(f"input raster '{sl.path}' cannot be opened any more: {exc}") from exc
        if self.direct:
            from rasterio.enums import MaskFlags

            flags = [self._src.mask_flag_enums[i - 1] for i in self.indexes]
            self._nodata = [self._src.nodatavals[i - 1] if MaskFlags.nodata in f else None
                            for i, f in zip(self.indexes, flags)]
            self._mask_band = any(MaskFlags.per_dataset in f or MaskFlags.alpha in f
                                  for f in flags)
        elif sl.gcps is None:
            from rasterio.enums import MaskFlags, Resampling
            from rasterio.vrt import WarpedVRT

            extra = {}
            cal = sl.calibration
            if getattr(cal, "zero_nodata", False) and all(
                    self._src.nodatavals[i - 1] is None for i in self.indexes) and all(
                    f == [MaskFlags.all_valid] for f in self._src.mask_flag_enums):
                # Sentinel-2 NO_DATA 0 undeclared (engine.preprocessing.radiometry): the warper
                # leaves pixels 0 in every band out instead of blending them into their
                # neighbours (UNIFIED_SRC_NODATA: a pixel is nodata only when all bands are)
                extra = {"src_nodata": 0, "UNIFIED_SRC_NODATA": "YES"}
            try:
                self._vrt = WarpedVRT(self._src, crs=grid.crs, transform=grid.transform,
                                      width=grid.width, height=grid.height,
                                      resampling=Resampling.bilinear, nodata=np.nan,
                                      dtype="float32", **extra)
            except _read_errors() as exc:
                self._src.close()
                raise InputError(f"input raster '{sl.path}' cannot be warped to the model grid: "
                                 f"{exc}") from exc

    @property
    def cache_bytes(self) -> int:
        """GDAL block cache this reader needs to read a row of tiles without decoding a block
        twice: one row of the source's blocks (and of the warped VRT's blocks)."""
        src = self._src
        block_h = src.block_shapes[0][0] if src.block_shapes else 256
        itemsize = np.dtype(src.dtypes[0]).itemsize
        need = src.width * min(block_h, src.height) * src.count * itemsize
        if not self.direct:
            need += self.grid.width * min(512, self.grid.height) * src.count * 4
        return int(need)

    def _fail(self, exc, row: int, col: int, rows: int, cols: int, where: str) -> InputError:
        names = self.slice_band_names()
        return InputError(
            f"reading input raster '{self.slice.path}' failed: band(s) {names} (raster band(s) "
            f"{', '.join(map(str, self.indexes))}), window rows {row}-{row + rows - 1}, "
            f"cols {col}-{col + cols - 1} of {where}: {exc}")

    def slice_band_names(self) -> str:
        names = self.slice.band_names
        return ", ".join(names) if names else ", ".join(f"#{i}" for i in self.indexes)

    def read(self, row: int, col: int, size: int, width: int | None = None) -> np.ndarray:
        """Pixels of the window of ``size`` rows and ``width`` (default ``size``) columns at
        (row, col) of the model grid, in model units (calibration applied).

        Returns:
            float32 [bands, size, width] (bands in the model's order), NaN = nodata.

        Raises:
            InputError: GDAL failed to read (truncated file, missing VRT source...), naming
                the file, the band(s) and the window.
        """
        width = size if width is None else width
        if self._vrt is not None:
            from rasterio.windows import Window

            try:
                data = self._vrt.read(self.indexes, window=Window(col, row, width, size))
            except _read_errors() as exc:
                raise self._fail(exc, row, col, size, width, "the model grid (warped)") from exc
            data[~np.isfinite(data)] = np.nan
        elif not self.direct:
            data = self._read_gcps(row, col, size, width)
        else:
            data = self._read_direct(row, col, size, width)
        cal = self.slice.calibration
        return cal.apply(data) if cal is not None else data

    def _read_gcps(self, row: int, col: int, size: int, width: int) -> np.ndarray:
        from rasterio.enums import Resampling
        from rasterio.warp import reproject
        from rasterio.windows import Window, transform as window_transform
        import rasterio

        assert self.slice.gcps is not None
        gcps, gcp_crs = self.slice.gcps
        out = np.full((len(self.indexes), size, width), np.nan, dtype=np.float32)
        try:
            reproject(rasterio.band(self._src, self.indexes), out, gcps=list(gcps),
                      src_crs=gcp_crs, src_nodata=self._src.nodata,
                      dst_transform=window_transform(Window(col, row, width, size),
                                                     self.grid.transform),
                      dst_crs=self.grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear)
        except _read_errors() as exc:
            where = "the model grid (warped with GCPs)"
            raise self._fail(exc, row, col, size, width, where) from exc
        out[~np.isfinite(out)] = np.nan
        return out

    def _read_direct(self, row: int, col: int, size: int, width: int) -> np.ndarray:
        from rasterio.windows import Window

        src = self._src
        out = np.full((len(self.indexes), size, width), np.nan, dtype=np.float32)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + size, src.height), min(col + width, src.width)
        if r1 <= r0 or c1 <= c0:
            return out
        flipped = self.slice.flipped
        s0, s1 = (src.height - r1, src.height - r0) if flipped else (r0, r1)  # stored rows
        window = Window(c0, s0, c1 - c0, s1 - s0)
        try:
            data = src.read(self.indexes, window=window, out_dtype="float32")
            for band, value in enumerate(self._nodata):
                if value is not None:
                    data[band][data[band] == np.float32(value)] = np.nan  # NaN nodata stays NaN
            if self._mask_band:
                data[:, src.dataset_mask(window=window) == 0] = np.nan
        except _read_errors() as exc:
            raise self._fail(exc, s0, c0, s1 - s0, c1 - c0, "the raster") from exc
        data[~np.isfinite(data)] = np.nan
        if flipped:
            data = data[:, ::-1, :]
        out[:, r0 - row:r1 - row, c0 - col:c1 - col] = data
        return out

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        self._src.close()
