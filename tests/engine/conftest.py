"""Real GeoTIFFs for the engine tests, written with rasterio from the real Slovenia patch
(eo-learn example data, MIT; see shared/data/eolearn-slovenia-lulc/ATTRIBUTION.md)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import SHARED

SLOVENIA = os.path.join(SHARED, "data", "eolearn-slovenia-lulc")
#: Scene i of s2_l1c_reference_scenes.npy was acquired on SCENE_DATES[i] (ATTRIBUTION.md).
SCENE_DATES = ["2015-08-20", "2015-07-31", "2015-09-09", "2015-08-30", "2015-07-11"]
#: The tiny model's 10 bands (B02..B12 without B01, B09, B10) in the 13-band array.
S2_INDEX = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
CRS = "EPSG:32633"
X0, Y0 = 465181.05, 5080254.63   # top-left of the patch (bbox.geojson), metres


@pytest.fixture(scope="session")
def slovenia():
    """Real arrays: s2 uint16 DN [5, 10, 101, 100] (scene order), dem float32 [101, 100]."""
    s2 = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))
    dn = np.round(s2[..., S2_INDEX] * 10000).clip(1, 65535).astype("uint16").transpose(0, 3, 1, 2)
    dem = np.load(os.path.join(SLOVENIA, "dem.npy"))[..., 0].astype("float32")
    return {"s2": dn, "dem": dem}


def write_tif(path, array, transform, crs=CRS, nodata=None, tags=None):
    """Write a [bands, rows, cols] (or [rows, cols]) array as a GeoTIFF with rasterio."""
    import rasterio

    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    with rasterio.open(str(path), "w", driver="GTiff", width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=array.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array)
        if tags:
            dst.update_tags(**tags)
    return str(path)


def grid(px=10.0, x0=X0, y0=Y0):
    from rasterio.transform import from_origin

    return from_origin(x0, y0, px, px)


def downsample2(a):
    """Mean of 2x2 blocks (crops an odd last row/column)."""
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


@pytest.fixture
def scene(tmp_path, slovenia):
    """A ready multimodal input on aligned grids: 5 S2 dates (10 m, nodata 0, dates in the
    file names) and a DEM on the 20 m model grid; ``rows``/``cols`` crop the patch."""

    def make(rows=101, cols=100, dates=(0, 1, 2, 3, 4), dem_px=20.0, dem_crs=CRS, s2_edit=None,
             dem_edit=None, folder=None):
        folder = folder or tmp_path
        paths = []
        for i in dates:
            data = slovenia["s2"][i][:, :rows, :cols].copy()
            if s2_edit:
                s2_edit(i, data)
            paths.append(write_tif(os.path.join(folder, f"S2_{SCENE_DATES[i].replace('-', '')}.tif"),
                                   data, grid(), nodata=0))
        dem = slovenia["dem"][:rows, :cols].copy()
        if dem_px == 20.0:
            dem = downsample2(dem).astype("float32")
        if dem_edit:
            dem_edit(dem)
        dem_path = os.path.join(folder, "dem.tif")
        if dem_crs == CRS:
            write_tif(dem_path, dem, grid(dem_px), nodata=-9999.0)
        else:
            write_reprojected(dem_path, dem, grid(dem_px), dem_crs, dem_px)
        return {"s2": paths, "dem": [dem_path]}

    return make


def write_reprojected(path, array, transform, dst_crs, px):
    """Write ``array`` (in EPSG:32633 on ``transform``) warped by GDAL into ``dst_crs``."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    h, w = array.shape[-2:]
    from rasterio.transform import array_bounds

    bounds = array_bounds(h, w, transform)
    dst_t, dw, dh = calculate_default_transform(CRS, dst_crs, w, h, *bounds, resolution=px)
    out = np.full((dh, dw), -9999.0, dtype="float32")
    reproject(array, out, src_transform=transform, src_crs=CRS, dst_transform=dst_t,
              dst_crs=dst_crs, resampling=Resampling.bilinear, src_nodata=-9999.0,
              dst_nodata=-9999.0)
    return write_tif(path, out, dst_t, crs=dst_crs, nodata=-9999.0)


def run_session(model_path, feeds):
    """The same ONNX model run directly through onnxruntime (the reference for the engine)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]
