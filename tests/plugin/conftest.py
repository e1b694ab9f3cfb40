"""Fixtures of the plugin tests: the plugin loaded as QGIS loads it, and real GeoTIFFs
written with rasterio from the real eo-learn Slovenia patch (ATTRIBUTION.md there).

The tiny test models (tests/conftest.py ``tiny_models``) want S2 with 10 bands
(B02..B12 without B01, B09, B10) at 10 m, and a DEM of 1 band at 20 m.
"""
from __future__ import annotations

import datetime
import json
import os

import numpy as np
import pytest

from tests.conftest import SHARED, load_plugin

SLOVENIA = os.path.join(SHARED, "data", "eolearn-slovenia-lulc")
#: indices of the tiny model's 10 S2 bands in the 13-band L1C array.
S2_BAND_INDEX = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
#: dates of s2_l1c_reference_scenes.npy scenes 0..4 (ATTRIBUTION.md).
S2_DATES = ["2015-08-20", "2015-07-31", "2015-09-09", "2015-08-30", "2015-07-11"]
#: rows/cols of the nodata block in the "nodata" S2 variant (all dates).
NODATA_BLOCK = (slice(20, 52), slice(30, 62))


@pytest.fixture(scope="session")
def maestro(qgis_app, qgis_processing):
    """Load the plugin as QGIS does (classFactory + initProcessing), once per session."""
    plugin = load_plugin()
    yield plugin
    plugin.unload()


def _bbox():
    with open(os.path.join(SLOVENIA, "bbox.geojson"), encoding="utf-8") as fh:
        ring = json.load(fh)["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), max(ys)


def _write(path, array, crs, transform, nodata, dtype, tags=None):
    import rasterio

    count, height, width = array.shape
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=dtype,
                   transform=transform, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(dtype))
        if tags:
            dst.update_tags(**tags)
    return str(path)


class Rasters:
    """Paths of the GeoTIFFs the tests use (see :func:`rasters`)."""

    def __init__(self, folder):
        from rasterio.crs import CRS
        from rasterio.transform import from_origin
        from rasterio.warp import Resampling, reproject

        self.folder = folder
        x0, y0 = _bbox()
        utm = CRS.from_epsg(32633)
        tr = from_origin(x0, y0, 10.0, 10.0)
        scenes = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))  # (5,101,100,13)
        # reflectance 0-1 -> digital numbers as distributed (x 10000), 0 = nodata
        dn = np.clip(np.round(scenes[..., S2_BAND_INDEX] * 10000), 1, 65535)
        dn = dn.transpose(0, 3, 1, 2).astype("uint16")                        # (5,10,101,100)
        d = folder / "s2"
        d.mkdir()
        self.s2 = [_write(d / f"S2_{date.replace('-', '')}.tif", dn[i], utm, tr, 0, "uint16")
                   for i, date in enumerate(S2_DATES)]
        # same scenes, dates only in TIFFTAG_DATETIME (file names without dates)
        d = folder / "s2_tags"
        d.mkdir()
        self.s2_tagged = [_write(d / f"scene_{'abcde'[i]}.tif", dn[i], utm, tr, 0, "uint16",
                                 {"TIFFTAG_DATETIME": date.replace("-", ":") + " 10:00:00"})
                          for i, date in enumerate(S2_DATES)]
        # no date anywhere
        d = folder / "s2_nodate"
        d.mkdir()
        self.s2_undated = [_write(d / f"scene_{'abcde'[i]}.tif", dn[i], utm, tr, 0, "uint16")
                           for i in range(2)]
        # a nodata block in every date
        holed = dn.copy()
        holed[:, :, NODATA_BLOCK[0], NODATA_BLOCK[1]] = 0
        d = folder / "s2_hole"
        d.mkdir()
        self.s2_hole = [_write(d / f"S2_{date.replace('-', '')}.tif", holed[i], utm, tr, 0,
                               "uint16") for i, date in enumerate(S2_DATES[:3])]
        self.s2_9bands = _write(folder / "S2_9bands_20150820.tif", dn[0][:9], utm, tr, 0, "uint16")
        self.s2_no_crs = _write(folder / "S2_nocrs_20150820.tif", dn[0], None, tr, 0, "uint16")
        self.s2_empty = _write(folder / "S2_empty_20150820.tif", np.zeros_like(dn[0]), utm, tr, 0,
                               "uint16")
        # 4 x 4 copies of the patch (404 x 400 px, 2 dates) + a DEM on the same area at
        # 20 m: a run long enough (hundreds of tiles at batch size 1) to cancel it mid-run
        big = np.tile(dn[:2], (1, 1, 4, 4))
        d = folder / "s2_big"
        d.mkdir()
        self.s2_big = [_write(d / f"S2_{date.replace('-', '')}.tif", big[i], utm, tr, 0,
                              "uint16") for i, date in enumerate(S2_DATES[:2])]
        dem10 = np.load(os.path.join(SLOVENIA, "dem.npy"))[:100, :, 0].astype("float32")
        dem20 = dem10.reshape(50, 2, 50, 2).mean(axis=(1, 3))
        self.dem_big = _write(folder / "dem_big_utm_20m.tif", np.tile(dem20, (4, 4))[None],
                              utm, from_origin(x0, y0, 20.0, 20.0), -9999.0, "float32")
        # DEM: second CRS (ETRS89-LAEA, EPSG:3035) and pixel size (20 m)
        dem = np.load(os.path.join(SLOVENIA, "dem.npy"))[..., 0].astype("float32")
        laea = CRS.from_epsg(3035)
        from rasterio.warp import calculate_default_transform
        w, s, e, n = x0, y0 - 1010, x0 + 1000, y0
        dtr, dw, dh = calculate_default_transform(utm, laea, 100, 101, w, s, e, n, resolution=20)
        out = np.full((1, dh, dw), -9999.0, dtype="float32")
        reproject(dem[None], out, src_transform=tr, src_crs=utm, dst_transform=dtr,
                  dst_crs=laea, src_nodata=None, dst_nodata=-9999.0,
                  resampling=Resampling.bilinear)
        self.dem = _write(folder / "dem_laea_20m.tif", out, laea, dtr, -9999.0, "float32")
        # the same DEM 100 km east: overlaps nothing
        far = from_origin(dtr.c + 100000, dtr.f, 20.0, 20.0)
        self.dem_far = _write(folder / "dem_far.tif", out, laea, far, -9999.0, "float32")


@pytest.fixture(scope="session")
def rasters(tmp_path_factory):
    return Rasters(tmp_path_factory.mktemp("rasters"))


@pytest.fixture(scope="session")
def onnx_without_metadata(tiny_models, tmp_path_factory):
    """The tiny segmentation model with its 'maestro' metadata removed."""
    import onnx

    model = onnx.load(tiny_models["segmentation"])
    del model.metadata_props[:]
    path = tmp_path_factory.mktemp("bad_models") / "no-metadata.onnx"
    onnx.save(model, str(path))
    return str(path)


def read_raster(path):
    """(array [bands, rows, cols], profile) of a raster."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), src.profile


def iso(date_text):
    return datetime.date.fromisoformat(date_text)
