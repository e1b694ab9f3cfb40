"""The eo-learn Slovenia patch (shared/data/eolearn-slovenia-lulc) written as GeoTIFF stacks,
the way a QGIS user would have it: one GeoTIFF per date, a DEM and a land-cover raster.

101 rows x 100 columns at 10 m in EPSG:32633. Written files (under ``out``):
``s2/S2L1C_<YYYYMMDD>.tif`` (13 bands, TOA reflectance 0-1, 5 dates),
``ndvi/NDVI_<YYYYMMDDTHH>.tif`` (1 band, 68 dates), ``clouds/CLM_<YYYYMMDDTHH>.tif`` (1 = cloud,
68 dates), ``dem.tif`` (m) and ``lulc.tif`` (uint16 classes, 0 = no data). Each dated file also
carries the GDAL tag ``ACQUISITIONDATETIME``.

Usage: ``python -m training.datasets.slovenia OUT_DIR [SOURCE_DIR]``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_bounds

S2_L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
                "B11", "B12"]
#: Scene i of s2_l1c_reference_scenes.npy is timestamps[SCENE_DATES[i]] (ATTRIBUTION.md).
SCENE_DATES = [2, 1, 4, 3, 0]
#: Land-cover classes present in the patch (value in lulc.tif, name, colour).
CLASSES = [
    {"value": 1, "name": "cultivated land", "color": "#ffff00"},
    {"value": 2, "name": "forest", "color": "#054907"},
    {"value": 3, "name": "grassland", "color": "#ffa500"},
    {"value": 4, "name": "shrubland", "color": "#806000"},
    {"value": 8, "name": "artificial surface", "color": "#dc143c"},
]
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "data", "eolearn-slovenia-lulc")


def _write(path: str, array: np.ndarray, transform, crs, date: dt.datetime | None = None,
           nodata=None, descriptions=None) -> None:
    """array [C, H, W]."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=array.shape[1], width=array.shape[2],
                       count=array.shape[0], dtype=array.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array)
        if date is not None:
            dst.update_tags(ACQUISITIONDATETIME=date.isoformat())
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)


def write_slovenia_stack(out: str, source: str = SOURCE, ndvi: bool = True) -> dict:
    """Write the patch as GeoTIFFs under ``out``; returns ``{"s2": [...], "dem": ..., ...}``."""
    with open(os.path.join(source, "bbox.geojson")) as f:
        ring = json.load(f)["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    with open(os.path.join(source, "timestamps.json")) as f:
        stamps = [dt.datetime.fromisoformat(s) for s in json.load(f)]
    scenes = np.load(os.path.join(source, "s2_l1c_reference_scenes.npy"))   # [5, H, W, 13]
    h, w = scenes.shape[1:3]
    transform = from_bounds(min(xs), min(ys), max(xs), max(ys), w, h)
    crs = CRS.from_epsg(32633)
    written: dict = {"s2": []}
    for i, k in enumerate(SCENE_DATES):
        d = stamps[k]
        p = os.path.join(out, "s2", f"S2L1C_{d:%Y%m%d}.tif")
        _write(p, np.moveaxis(scenes[i], -1, 0).astype(np.float32), transform, crs, d,
               descriptions=S2_L1C_BANDS)
        written["s2"].append(p)
    if ndvi:
        nd = np.load(os.path.join(source, "ndvi.npy"))[..., 0]           # [68, H, W]
        cm = np.load(os.path.join(source, "cloud_mask.npy"))[..., 0]     # [68, H, W]
        written["ndvi"], written["clouds"] = [], []
        for k, d in enumerate(stamps):
            # Two acquisitions share 2015-12-08: the hour keeps the names apart.
            p = os.path.join(out, "ndvi", f"NDVI_{d:%Y%m%dT%H%M}.tif")
            _write(p, np.nan_to_num(nd[k])[None].astype(np.float32), transform, crs, d)
            written["ndvi"].append(p)
            p = os.path.join(out, "clouds", f"CLM_{d:%Y%m%dT%H%M}.tif")
            _write(p, cm[k][None].astype(np.uint8), transform, crs, d)
            written["clouds"].append(p)
    dem = np.load(os.path.join(source, "dem.npy"))[..., 0]
    written["dem"] = os.path.join(out, "dem.tif")
    _write(written["dem"], dem[None].astype(np.float32), transform, crs)
    lulc = np.load(os.path.join(source, "lulc.npy"))[..., 0]
    written["lulc"] = os.path.join(out, "lulc.tif")
    _write(written["lulc"], lulc[None].astype(np.uint16), transform, crs, nodata=0)
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m training.datasets.slovenia OUT_DIR [SOURCE_DIR]")
    print(json.dumps(write_slovenia_stack(*sys.argv[1:]), indent=1))
