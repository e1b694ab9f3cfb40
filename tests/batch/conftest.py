"""Real inputs for the batch tests: the eo-learn Slovenia patch (real Sentinel-2 L1C, 5 dates,
and its DEM) written as GeoTIFFs, and a Dask cluster of 2 worker processes."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import SHARED

SLOVENIA = os.path.join(SHARED, "data", "eolearn-slovenia-lulc")
#: Band order of the .npy (ATTRIBUTION.md) and the tiny model's bands (tests/tiny_model.py).
NPY_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
MODEL_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
#: Scene i of s2_l1c_reference_scenes.npy is timestamps[k] with k = SCENE_DATES[i] (ATTRIBUTION.md).
SCENE_DATES = [2, 1, 4, 3, 0]
#: A rectangle of nodata in every date (rows, cols): the engine must write 255 there.
NODATA_ROWS, NODATA_COLS = slice(70, 86), slice(5, 21)


@pytest.fixture(scope="session")
def slovenia_inputs(tmp_path_factory):
    """``{"s2": [5 GeoTIFFs, uint16 reflectance x 10000, nodata 0], "dem": [GeoTIFF, 20 m]}``
    on the 101 x 100 px, 10 m grid of the patch (EPSG:32633)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import Resampling, reproject

    out = tmp_path_factory.mktemp("slovenia")
    with open(os.path.join(SLOVENIA, "bbox.geojson")) as f:
        ring = json.load(f)["coordinates"][0]
    x0, y0 = min(p[0] for p in ring), max(p[1] for p in ring)
    transform = from_origin(x0, y0, 10.0, 10.0)
    with open(os.path.join(SLOVENIA, "timestamps.json")) as f:
        stamps = json.load(f)
    scenes = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))  # (5, 101, 100, 13)
    pick = [NPY_BANDS.index(b) for b in MODEL_BANDS]
    profile = dict(driver="GTiff", crs="EPSG:32633", transform=transform, height=101, width=100,
                   tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    s2 = []
    for i, k in enumerate(SCENE_DATES):
        day = stamps[k][:10].replace("-", "")
        data = np.clip(np.round(scenes[i][:, :, pick] * 10000), 1, 65535).astype("uint16")
        data = np.moveaxis(data, -1, 0)                                  # (10, 101, 100)
        data[:, NODATA_ROWS, NODATA_COLS] = 0
        path = str(out / f"s2_{day}.tif")
        with rasterio.open(path, "w", count=10, dtype="uint16", nodata=0, **profile) as dst:
            dst.write(data)
            dst.descriptions = tuple(MODEL_BANDS)
        s2.append(path)
    dem10 = np.load(os.path.join(SLOVENIA, "dem.npy"))[:, :, 0].astype("float32")  # (101, 100)
    dem20 = np.zeros((51, 50), dtype="float32")
    t20 = from_origin(x0, y0, 20.0, 20.0)
    reproject(dem10, dem20, src_transform=transform, src_crs="EPSG:32633", dst_transform=t20,
              dst_crs="EPSG:32633", resampling=Resampling.average, src_nodata=-9999,
              dst_nodata=-9999)
    dem = str(out / "dem_20m.tif")
    with rasterio.open(dem, "w", driver="GTiff", crs="EPSG:32633", transform=t20, height=51,
                       width=50, count=1, dtype="float32", nodata=-9999) as dst:
        dst.write(dem20, 1)
    return {"s2": s2, "dem": [dem]}


@pytest.fixture(scope="session")
def dask_cluster():
    """A real LocalCluster of 2 worker processes (1 thread each), shared by the tests that
    submit to an existing scheduler (``--scheduler``)."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", env={"OMP_NUM_THREADS": "1"})
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def reference_run(tiny_models, slovenia_inputs, tmp_path_factory):
    """The single-process engine run over the whole patch the mosaics must equal:
    (array [101, 100] uint8, profile)."""
    import rasterio

    from engine.api import RunOptions, run_model

    out = str(tmp_path_factory.mktemp("reference") / "whole.tif")
    run_model(tiny_models["segmentation"], slovenia_inputs, out, RunOptions(threads=1))
    with rasterio.open(out) as src:
        return src.read(1), src.profile
