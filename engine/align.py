"""Reading slices onto each modality's model grid, tile window by tile window.

The model grid of modality ``m`` has the reference raster's CRS and top-left corner and a
pixel ``T / t`` times the reference pixel (``T``, ``t``: reference and ``m`` tile sizes), so a
tile of the reference grid is exactly ``t x t`` pixels of ``m``'s grid on the same ground.
A slice already on that grid (same CRS and transform) is read directly; any other slice
(another CRS, pixel size or extent) is warped by GDAL through a rasterio ``WarpedVRT``
(bilinear; GDAL widens the kernel when downsampling and leaves nodata sources out).

Every read returns float32 ``[bands, rows, cols]`` with NaN where the pixel is nodata: equal
to the raster's nodata value, masked by its mask/alpha band, outside its coverage, or not
finite.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stack import Slice


@dataclass(frozen=True)
class ModelGrid:
    """A modality's model grid covering the padded tile grid.

    Attributes:
        crs, transform: rasterio CRS and Affine (reference CRS, reference top-left).
        width, height: pixels.
        scale: pixels of this grid per reference pixel (``t / T``).
    """

    crs: object
    transform: object
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
    return sl.crs == grid.crs and sl.transform.almost_equals(grid.transform, precision=1e-9 * max(
        1.0, abs(grid.transform.a)))


class SliceReader:
    """Reads one slice on a model grid. Use from one thread at a time (GDAL handles)."""

    def __init__(self, sl: Slice, grid: ModelGrid):
        import rasterio

        self.slice = sl
        self.grid = grid
        self.direct = _same_grid(sl, grid)
        self._src = rasterio.open(sl.path)
        self._vrt = None
        if not self.direct:
            from rasterio.enums import Resampling
            from rasterio.vrt import WarpedVRT

            self._vrt = WarpedVRT(self._src, crs=grid.crs, transform=grid.transform,
                                  width=grid.width, height=grid.height,
                                  resampling=Resampling.bilinear, nodata=np.nan, dtype="float32")
        else:
            from rasterio.enums import MaskFlags

            flags = self._src.mask_flag_enums
            self._nodata = [v if MaskFlags.nodata in f else None
                            for v, f in zip(self._src.nodatavals, flags)]
            self._mask_band = any(MaskFlags.per_dataset in f or MaskFlags.alpha in f
                                  for f in flags)

    @property
    def cache_bytes(self) -> int:
        """GDAL block cache this reader needs to read a row of tiles without decoding a block
        twice: one row of the source's blocks (and of the warped VRT's blocks)."""
        src = self._src
        block_h = src.block_shapes[0][0] if src.block_shapes else 256
        itemsize = np.dtype(src.dtypes[0]).itemsize
        need = src.width * min(block_h, src.height) * src.count * itemsize
        if self._vrt is not None:
            need += self.grid.width * min(512, self.grid.height) * src.count * 4
        return int(need)

    def read(self, row: int, col: int, size: int, width: int | None = None) -> np.ndarray:
        """Pixels of the window of ``size`` rows and ``width`` (default ``size``) columns at
        (row, col) of the model grid.

        Returns:
            float32 [bands, size, width], NaN = nodata.
        """
        from rasterio.windows import Window

        width = size if width is None else width
        if self._vrt is not None:
            data = self._vrt.read(window=Window(col, row, width, size))
            data[~np.isfinite(data)] = np.nan
            return data
        src = self._src
        out = np.full((src.count, size, width), np.nan, dtype=np.float32)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + size, src.height), min(col + width, src.width)
        if r1 <= r0 or c1 <= c0:
            return out
        window = Window(c0, r0, c1 - c0, r1 - r0)
        data = src.read(window=window, out_dtype="float32")
        for band, value in enumerate(self._nodata):
            if value is not None:
                data[band][data[band] == np.float32(value)] = np.nan  # NaN nodata stays NaN
        if self._mask_band:
            data[:, src.dataset_mask(window=window) == 0] = np.nan
        data[~np.isfinite(data)] = np.nan
        out[:, r0 - row:r1 - row, c0 - col:c1 - col] = data
        return out

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        self._src.close()
