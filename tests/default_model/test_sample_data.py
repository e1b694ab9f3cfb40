"""The bundled Slovenia sample: real values, georeferencing, dates, reference colours."""
from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pytest
import rasterio

from tests.conftest import ROOT, SHARED
from training.recipes.sample_data import (L1C_BANDS, LULC_CLASSES, S2_BANDS, convert,
                                          sample_s2_paths)

SAMPLE = os.path.join(ROOT, "resources", "sample")
SOURCE = os.path.join(SHARED, "data", "eolearn-slovenia-lulc")
#: Scene i of the shared array is timestamps[k] (shared ATTRIBUTION.md).
SCENE_TIMESTAMP = [2, 1, 4, 3, 0]


@pytest.fixture(scope="module")
def source():
    with open(os.path.join(SOURCE, "timestamps.json")) as fh:
        stamps = json.load(fh)
    with open(os.path.join(SOURCE, "bbox.geojson")) as fh:
        ring = json.load(fh)["coordinates"][0]
    return {"s2": np.load(os.path.join(SOURCE, "s2_l1c_reference_scenes.npy")),
            "dem": np.load(os.path.join(SOURCE, "dem.npy"))[..., 0],
            "lulc": np.load(os.path.join(SOURCE, "lulc.npy"))[..., 0],
            "stamps": stamps,
            "bounds": (min(p[0] for p in ring), min(p[1] for p in ring),
                       max(p[0] for p in ring), max(p[1] for p in ring))}


def _all_files():
    return sample_s2_paths(SAMPLE) + [os.path.join(SAMPLE, n)
                                      for n in ("dem.tif", "lulc_reference.tif")]


def test_files_and_attribution_are_bundled():
    names = sorted(os.listdir(SAMPLE))
    assert [n for n in names if n.startswith("S2_L1C_") and n.endswith(".tif")] == [
        "S2_L1C_20150711.tif", "S2_L1C_20150731.tif", "S2_L1C_20150820.tif",
        "S2_L1C_20150830.tif", "S2_L1C_20150909.tif"]
    text = open(os.path.join(SAMPLE, "ATTRIBUTION.md")).read()
    assert "eo-learn" in text and "MIT" in text and "Copernicus Sentinel" in text


def test_georeferencing_matches_the_source_bbox(source):
    for path in _all_files():
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32633, path
            assert (ds.height, ds.width) == (101, 100), path
            np.testing.assert_allclose(tuple(ds.bounds), source["bounds"], atol=1e-6,
                                       err_msg=path)
            # North-up grid of about 10 m pixels.
            assert ds.transform.b == 0 and ds.transform.d == 0
            assert 9.99 < ds.transform.a < 10.0 and -10.0 < ds.transform.e < -9.99


def test_s2_dates_in_tags_and_names(source):
    want = sorted(dt.datetime.fromisoformat(source["stamps"][k]) for k in SCENE_TIMESTAMP)
    got = []
    for path in sample_s2_paths(SAMPLE):
        with rasterio.open(path) as ds:
            tags = ds.tags()
        when = dt.datetime.fromisoformat(tags["ACQUISITIONDATETIME"].rstrip("Z"))
        assert tags["TIFFTAG_DATETIME"] == when.strftime("%Y:%m:%d %H:%M:%S")
        assert os.path.basename(path) == f"S2_L1C_{when:%Y%m%d}.tif"
        got.append(when)
    assert got == want


def test_engine_reads_the_sample_dates():
    from engine import dates

    for path in sample_s2_paths(SAMPLE):
        name_date = dt.datetime.strptime(os.path.basename(path)[7:15], "%Y%m%d").date()
        assert dates.read_slice_date(path) == name_date


def test_s2_values_equal_the_shared_reflectances(source):
    keep = [L1C_BANDS.index(b) for b in S2_BANDS]
    by_date = {dt.datetime.fromisoformat(source["stamps"][k]).date(): i
               for i, k in enumerate(SCENE_TIMESTAMP)}
    for path in sample_s2_paths(SAMPLE):
        with rasterio.open(path) as ds:
            assert list(ds.descriptions) == S2_BANDS
            assert ds.dtypes == ("uint16",) * 10 and ds.nodata == 0
            dn = ds.read()
        scene = source["s2"][by_date[dt.datetime.strptime(path[-12:-4], "%Y%m%d").date()]]
        refl = np.moveaxis(scene[..., keep], -1, 0)
        np.testing.assert_allclose(dn / 10000.0, refl, atol=5e-5 + 1e-7)
        assert (dn > 0).all(), "0 is nodata: no real pixel may be 0"


def test_dem_and_reference_equal_the_shared_arrays(source):
    with rasterio.open(os.path.join(SAMPLE, "dem.tif")) as ds:
        assert ds.dtypes[0] == "float32"
        np.testing.assert_array_equal(ds.read(1), source["dem"])
    with rasterio.open(os.path.join(SAMPLE, "lulc_reference.tif")) as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0
        np.testing.assert_array_equal(ds.read(1), source["lulc"])
        cmap = ds.colormap(1)
    for code, (_, color) in LULC_CLASSES.items():
        assert "#%02x%02x%02x" % cmap[code][:3] == color


def test_reference_class_names_are_readable_by_gdal():
    from osgeo import gdal

    info = gdal.Info(os.path.join(SAMPLE, "lulc_reference.tif"), format="json")
    names = info["bands"][0]["categories"]
    assert names[2] == "forest" and names[8] == "artificial surface"


def test_conversion_reproduces_the_bundled_files(tmp_path):
    """The bundled files are what `python -m training.recipes.sample_data` writes."""
    written = convert(SOURCE, str(tmp_path))
    assert len(written) == 7
    for path in written:
        bundled = os.path.join(SAMPLE, os.path.basename(path))
        with rasterio.open(path) as new, rasterio.open(bundled) as old:
            np.testing.assert_array_equal(new.read(), old.read())
            assert new.tags() == old.tags() and new.transform == old.transform


# ----------------------------------------------------------------- TreeSatAI-TS plots
def test_treesatai_plots_hold_the_shared_series():
    import h5py

    from training.recipes.treesatai_sample import SAMPLES, product_time

    for stem in SAMPLES:
        folder = os.path.join(SAMPLE, "treesatai", stem)
        with rasterio.open(os.path.join(folder, "aerial.tif")) as ds:
            aerial_crs, b = ds.crs, ds.bounds
        files = sorted(os.listdir(folder))
        assert sum(f.startswith("S2_L2A_") for f in files) == 16
        assert sum(f.startswith("S1_ASC_") for f in files) == 4
        h5name = [f for f in os.listdir(os.path.join(SHARED, "data", "treesatai-ts-samples",
                                                      "sentinel-ts")) if f.startswith(stem)][0]
        with h5py.File(os.path.join(SHARED, "data", "treesatai-ts-samples", "sentinel-ts",
                                    h5name), "r") as h5:
            days = {product_time(p).strftime("%Y%m%d"): i
                    for i, p in enumerate(h5["sen-2-products"][()])}
            for name in (f for f in files if f.startswith("S2_L2A_")):
                with rasterio.open(os.path.join(folder, name)) as ds:
                    assert ds.crs == aerial_crs and list(ds.descriptions) == S2_BANDS
                    # The 60 m grid is centred on the aerial footprint.
                    assert (ds.bounds.left + ds.bounds.right) / 2 == pytest.approx(
                        (b.left + b.right) / 2)
                    assert ds.tags()["ACQUISITIONDATETIME"][:10].replace("-", "") == name[7:15]
                    np.testing.assert_array_equal(
                        ds.read(), np.clip(np.rint(h5["sen-2-data"][days[name[7:15]]]), 1, None))
        labels = json.load(open(os.path.join(folder, "labels.json")))
        assert max(labels["genus_area_fraction"], key=labels["genus_area_fraction"].get) == \
            stem.split("_")[0]
