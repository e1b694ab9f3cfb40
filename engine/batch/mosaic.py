"""The mosaic over all block outputs: a VRT (always) and optionally one merged COG.

Blocks partition the area on the reference grid, so the VRT simply places each block file;
both are written through a temporary name renamed on success.
"""
from __future__ import annotations

import os
from typing import Sequence

from engine.errors import OutputError


def build_vrt(vrt_path: str, block_files: Sequence[str],
              clip: tuple[float, float, float, float] | None = None) -> str:
    """Write ``vrt_path`` referencing ``block_files`` (paths relative to the VRT when they
    are below its folder, so the output folder can be moved as a whole).

    Blocks end on the model's tile grid, so they may reach past the asked area: ``clip``
    (``xmin, ymin, xmax, ymax`` in the blocks' CRS) cuts the mosaic to the smallest window of
    whole output pixels covering it (reference pixels for a segmentation map; for outputs of
    one pixel per tile, whole tiles: nothing to cut).

    Raises:
        OutputError: no block, or GDAL or the file system failed (no temporary is left).
    """
    from osgeo import gdal

    gdal.UseExceptions()
    if not block_files:
        raise OutputError(f"No block output to mosaic into {vrt_path}.")
    tmp = vrt_path + ".tmp.vrt"
    sources = [os.path.abspath(f) for f in sorted(block_files)]
    try:
        ds = gdal.BuildVRT(tmp, sources)
        cut = _clip_bounds(ds, clip) if clip is not None else None
        if cut is not None:
            ds = None
            ds = gdal.BuildVRT(tmp, sources, outputBounds=cut)
        _copy_band_labels(block_files[0], ds)
        ds.FlushCache()
        ds = None
        # The temp name sits in the same folder, so relative source paths stay valid.
        os.replace(tmp, vrt_path)
    except (RuntimeError, OSError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OutputError(f"Cannot write the mosaic VRT {vrt_path}: {exc}") from exc
    return vrt_path


def _clip_bounds(ds, clip: tuple[float, float, float, float]):
    """Bounds of the smallest window of ``ds``'s whole pixels covering ``clip`` (within
    ``ds``), or None when that window is all of ``ds``."""
    import math

    x0, rx, _, y0, _, ry = ds.GetGeoTransform()
    xmin, ymin, xmax, ymax = clip
    eps = 1e-6  # bounds on pixel edges (up to float noise) do not grow by one pixel
    c0 = max(0, math.floor((xmin - x0) / rx + eps))
    c1 = min(ds.RasterXSize, math.ceil((xmax - x0) / rx - eps))
    r0 = max(0, math.floor((ymax - y0) / ry + eps))
    r1 = min(ds.RasterYSize, math.ceil((ymin - y0) / ry - eps))
    if (c0, r0, c1, r1) == (0, 0, ds.RasterXSize, ds.RasterYSize) or c1 <= c0 or r1 <= r0:
        return None
    return (x0 + c0 * rx, y0 + r1 * ry, x0 + c1 * rx, y0 + r0 * ry)


def _copy_band_labels(block_file: str, vrt) -> None:
    """Band descriptions and category names (class names of segmentation outputs) are not
    carried by BuildVRT: copy them from one block."""
    from osgeo import gdal

    src = gdal.Open(block_file)
    for i in range(1, src.RasterCount + 1):
        band, out = src.GetRasterBand(i), vrt.GetRasterBand(i)
        if band.GetDescription():
            out.SetDescription(band.GetDescription())
        if band.GetCategoryNames():
            out.SetCategoryNames(band.GetCategoryNames())


def merge_cog(vrt_path: str, cog_path: str, threads: int | str = "ALL_CPUS") -> str:
    """Translate the VRT into one Cloud Optimized GeoTIFF (DEFLATE; overviews by the COG
    driver, nearest for class rasters).

    The colour table, nodata and band descriptions are in the TIFF itself; the category
    (class) names are not (GDAL's GeoTIFF driver keeps them in its ``.aux.xml`` side file),
    so the temporary's side file is renamed with it to ``<cog_path>.aux.xml`` (and a side file
    of an earlier mosaic that the new one lacks is removed): no ``.tmp.tif.aux.xml`` is left.

    Raises:
        OutputError: GDAL or the file system failed; no temporary is left then.
    """
    from osgeo import gdal

    gdal.UseExceptions()
    tmp = cog_path + ".tmp.tif"
    tmp_aux, aux = tmp + ".aux.xml", cog_path + ".aux.xml"
    try:
        src = gdal.Open(vrt_path)
        categorical = src.GetRasterBand(1).GetColorTable() is not None
        ds = gdal.Translate(tmp, src, format="COG", creationOptions=[
            "COMPRESS=DEFLATE", f"NUM_THREADS={threads}", "BIGTIFF=IF_SAFER",
            f"RESAMPLING={'NEAREST' if categorical else 'AVERAGE'}"])
        del ds  # closes the COG (and writes its PAM side file)
        src = None
        # The side file first: a complete-looking mosaic.tif always has its class names.
        if os.path.exists(tmp_aux):
            os.replace(tmp_aux, aux)
        elif os.path.exists(aux):
            os.remove(aux)
        os.replace(tmp, cog_path)
    except (RuntimeError, OSError) as exc:
        for path in (tmp, tmp_aux):
            if os.path.exists(path):
                os.remove(path)
        raise OutputError(f"Cannot write the merged COG {cog_path}: {exc}") from exc
    return cog_path
