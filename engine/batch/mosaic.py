"""The mosaic over all block outputs: a VRT (always) and optionally one merged COG.

Blocks partition the area on the reference grid, so the VRT simply places each block file;
both are written through a temporary name renamed on success.
"""
from __future__ import annotations

import os
from typing import Sequence

from engine.errors import OutputError


def build_vrt(vrt_path: str, block_files: Sequence[str]) -> str:
    """Write ``vrt_path`` referencing ``block_files`` (paths relative to the VRT when they
    are below its folder, so the output folder can be moved as a whole)."""
    from osgeo import gdal

    gdal.UseExceptions()
    if not block_files:
        raise OutputError(f"No block output to mosaic into {vrt_path}.")
    tmp = vrt_path + ".tmp.vrt"
    try:
        ds = gdal.BuildVRT(tmp, [os.path.abspath(f) for f in sorted(block_files)])
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
    driver, nearest for class rasters)."""
    from osgeo import gdal

    gdal.UseExceptions()
    tmp = cog_path + ".tmp.tif"
    try:
        src = gdal.Open(vrt_path)
        categorical = src.GetRasterBand(1).GetColorTable() is not None
        ds = gdal.Translate(tmp, src, format="COG", creationOptions=[
            "COMPRESS=DEFLATE", f"NUM_THREADS={threads}", "BIGTIFF=IF_SAFER",
            f"RESAMPLING={'NEAREST' if categorical else 'AVERAGE'}"])
        del ds  # closes the COG
        src = None
        os.replace(tmp, cog_path)
    except (RuntimeError, OSError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OutputError(f"Cannot write the merged COG {cog_path}: {exc}") from exc
    return cog_path
