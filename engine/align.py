"""Reading slices onto each modality's model grid, tile window by tile window.

The model grid of modality ``m`` has the reference raster's CRS and top-left corner and a
pixel ``T / t`` times the reference pixel (``T``, ``t``: reference and ``m`` tile sizes), so a
tile of the reference grid is exactly ``t x t`` pixels of ``m``'s grid on the same ground.
A slice already on that grid (same CRS and transform) is read directly; any other slice
(another CRS, pixel size or extent) is warped by GDAL through a rasterio ``WarpedVRT``
(bilinear; GDAL widens the kernel when downsampling and leaves nodata sources out, including
Sentinel-2 pixels 0 in a band when the raster declares no nodata). A slice whose
calibration has a valid range (elevation in metres: values outside it are DEM voids such as
-32768 that the raster may not declare) is warped instead from its own pixels with those
values set to NaN first, so that GDAL leaves them out of the kernel exactly as declared
nodata (``rasterio.warp.reproject`` per block of 128 x 512 model pixels, the warped VRT's
blocks: a DEM without such values gets the warped VRT's pixels); GCP-georeferenced ones too.

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


#: (rows, cols) of the blocks a raster whose calibration has a valid range is warped in:
#: those of GDAL's warped VRT (VRTWarpedDataset's default block, 512 x 128).
WARP_BLOCK = (128, 512)


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
    window by window with their GCPs (GDAL's GCP polynomial transformer). On every warped
    path, a slice whose calibration has a ``valid_range`` (DEMs) has the values it takes as
    nodata left out of the resampling kernel like declared nodata (module docstring).

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
        cal = sl.calibration
        #: resampled from arrays masked first (values the calibration takes as nodata left out)
        self._masked = not self.direct and getattr(cal, "valid_range", None) is not None
        self._blocks: dict[tuple[int, int], np.ndarray] = {}
        #: one row of warped blocks and one more (the runner reads tile rows in order)
        self._max_blocks = -(-grid.width // WARP_BLOCK[1]) + 1
        if self.direct or self._masked:
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
            if getattr(cal, "zero_nodata", False) and all(
                    self._src.nodatavals[i - 1] is None for i in self.indexes) and all(
                    f == [MaskFlags.all_valid] for f in self._src.mask_flag_enums):
                # Sentinel-2 NO_DATA 0 undeclared (engine.preprocessing.radiometry): the warper
                # leaves each band's 0 out of that band's kernel instead of blending it into
                # its neighbours (UNIFIED_SRC_NODATA=NO: nodata per band, as a band's 0 is)
                extra = {"src_nodata": 0, "UNIFIED_SRC_NODATA": "NO"}
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
        twice: one row of the source's blocks (and of the warped VRT's blocks; the blocks a
        slice with a valid range is warped in are kept by the reader itself)."""
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
        if self._masked:
            data = self._read_masked(row, col, size, width)
        elif self._vrt is not None:
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
            data = self._read_stored(window)
        except _read_errors() as exc:
            raise self._fail(exc, s0, c0, s1 - s0, c1 - c0, "the raster") from exc
        if flipped:
            data = data[:, ::-1, :]
        out[:, r0 - row:r1 - row, c0 - col:c1 - col] = data
        return out

    def _read_stored(self, window) -> np.ndarray:
        """float32 [bands, rows, cols] of the stored window (file rows, as stored), NaN where
        the raster declares nodata (value, mask or alpha band) or the value is not finite."""
        src = self._src
        data = src.read(self.indexes, window=window, out_dtype="float32")
        for band, value in enumerate(self._nodata):
            if value is not None:
                data[band][data[band] == np.float32(value)] = np.nan  # NaN nodata stays NaN
        if self._mask_band:
            data[:, src.dataset_mask(window=window) == 0] = np.nan
        data[~np.isfinite(data)] = np.nan
        return data

    def _source_window(self, dst_transform, rows: int, cols: int):
        """The window of the raster (file pixels) that GDAL's bilinear kernel can reach for
        the destination window ``rows x cols`` at ``dst_transform`` (model grid), clipped to
        the raster as GDAL clips its own; None when it does not overlap the raster.

        The window's outline (21 points a side) is transformed to the raster's CRS
        (``rasterio.warp.transform``), then to raster pixels by its geotransform (any
        rotation or south-up) or its GCPs (``rasterio.transform.rowcol``), and padded by
        twice the source pixels per model pixel plus 3 (GDAL widens the bilinear kernel by
        that ratio when downsampling). Coordinates that do not transform give the whole
        raster."""
        import math

        from rasterio.transform import rowcol
        from rasterio.warp import transform as transform_xy
        from rasterio.windows import Window

        src = self._src
        t = np.linspace(0.0, 1.0, 21)
        px = np.concatenate([t * cols, np.full_like(t, cols), t[::-1] * cols, np.zeros_like(t)])
        py = np.concatenate([np.zeros_like(t), t * rows, np.full_like(t, rows), t[::-1] * rows])
        xs, ys = dst_transform * (px, py)
        georef: Any
        if self.slice.gcps is not None:
            gcps, src_crs = self.slice.gcps
            georef = list(gcps)
        else:
            src_crs, georef = src.crs, src.transform
        whole = Window(0, 0, src.width, src.height)
        try:
            if src_crs != self.grid.crs:
                xs, ys = transform_xy(self.grid.crs, src_crs, list(xs), list(ys))
            r, c = rowcol(georef, xs, ys, op=float)
            r, c = np.asarray(r, np.float64), np.asarray(c, np.float64)
        except (ValueError,) + _read_errors():     # rasterio's TransformError, PROJ errors
            return whole
        if not (np.isfinite(r).all() and np.isfinite(c).all()):
            return whole
        ratio = max(1.0, (c.max() - c.min()) / max(cols, 1), (r.max() - r.min()) / max(rows, 1))
        pad = int(math.ceil(2.0 * ratio)) + 3
        c0 = max(int(math.floor(c.min())) - pad, 0)
        r0 = max(int(math.floor(r.min())) - pad, 0)
        c1 = min(int(math.ceil(c.max())) + pad, src.width)
        r1 = min(int(math.ceil(r.max())) + pad, src.height)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def _read_masked(self, row: int, col: int, size: int, width: int) -> np.ndarray:
        """A window of the model grid, cut from blocks of :data:`WARP_BLOCK` warped by
        :meth:`_warp_block` (kept for the next reads: the runner reads a row of tiles after
        the other); NaN outside the grid."""
        out = np.full((len(self.indexes), size, width), np.nan, dtype=np.float32)
        g = self.grid
        r0, r1 = max(row, 0), min(row + size, g.height)
        c0, c1 = max(col, 0), min(col + width, g.width)
        bh, bw = WARP_BLOCK
        for br in range(r0 // bh, (r1 - 1) // bh + 1) if r1 > r0 else ():
            for bc in range(c0 // bw, (c1 - 1) // bw + 1) if c1 > c0 else ():
                key = (br, bc)
                block = self._blocks.pop(key, None)
                if block is None:
                    try:
                        block = self._warp_block(br * bh, bc * bw, min(bh, g.height - br * bh),
                                                 min(bw, g.width - bc * bw))
                    except _read_errors() as exc:
                        where = "the model grid (warped" + (
                            " with GCPs)" if self.slice.gcps is not None else ")")
                        raise self._fail(exc, row, col, size, width, where) from exc
                self._blocks[key] = block                       # most recent last
                while len(self._blocks) > self._max_blocks:
                    self._blocks.pop(next(iter(self._blocks)))
                y0, x0 = max(r0, br * bh), max(c0, bc * bw)
                y1, x1 = min(r1, br * bh + block.shape[1]), min(c1, bc * bw + block.shape[2])
                out[:, y0 - row:y1 - row, x0 - col:x1 - col] = \
                    block[:, y0 - br * bh:y1 - br * bh, x0 - bc * bw:x1 - bc * bw]
        return out

    def _warp_block(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        """``rows x cols`` pixels of the model grid at (row, col), resampled (bilinear) from
        the raster's pixels with every value the calibration takes as nodata (outside
        ``valid_range`` after gain/bias, e.g. an undeclared DEM void -32768) set to NaN first,
        as declared nodata is: GDAL's warper leaves NaN sources out of the kernel
        (``src_nodata`` NaN, each band on its own) instead of blending them into their
        neighbours, wherever they are in the raster.

        Blocks and source windows as GDAL's warped VRT makes them (the same kernel: GDAL sizes
        it from the block's source window), so a DEM without such values gives the pixels of
        the warped VRT it would otherwise be read through."""
        from rasterio.control import GroundControlPoint
        from rasterio.enums import Resampling
        from rasterio.warp import reproject
        from rasterio.windows import Window, transform as window_transform

        out = np.full((len(self.indexes), rows, cols), np.nan, dtype=np.float32)
        dst_transform = window_transform(Window(col, row, cols, rows), self.grid.transform)
        window = self._source_window(dst_transform, rows, cols)
        if window is None:
            return out
        src = self._src
        data = self._read_stored(window)
        # what Calibration.apply will make nodata, found on the stored values (a copy)
        data[np.isnan(self.slice.calibration.apply(data.copy()))] = np.nan
        georef: dict[str, Any]
        if self.slice.gcps is not None:
            points, src_crs = self.slice.gcps
            r0, c0 = window.row_off, window.col_off
            georef = {"gcps": [GroundControlPoint(row=p.row - r0, col=p.col - c0, x=p.x, y=p.y,
                                                  z=p.z) for p in points]}
        else:
            src_crs = src.crs
            georef = {"src_transform": src.window_transform(window)}
        reproject(data, out, src_crs=src_crs, src_nodata=np.nan, dst_transform=dst_transform,
                  dst_crs=self.grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear,
                  UNIFIED_SRC_NODATA="NO", **georef)
        out[~np.isfinite(out)] = np.nan
        return out

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        self._src.close()
