"""Fixtures of the own-classes tests: the plugin fixtures of tests/plugin (the plugin loaded
as QGIS loads it, real Slovenia GeoTIFFs) plus a classified map and a reference sample built
from Olofsson et al. (2014)'s example (table 8)."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.plugin.conftest import maestro, rasters  # noqa: F401 (fixtures re-exported)

OLOFSSON_CLASSES = ["deforestation", "forest gain", "stable forest", "stable non-forest"]
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
#: Table 8's mapped areas divided by 1000: 10 000 pixels of 30 m (same shares W_i).
OLOFSSON_PIXELS = [200, 150, 3200, 6450]


def write_class_map(path, classes, crs="EPSG:32633", pixel=30.0, names=()):
    """A uint8 GeoTIFF of class ids [rows, cols] with nodata 255 and category names."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=classes.shape[1], height=classes.shape[0],
                       count=1, dtype="uint8", crs=crs, nodata=255,
                       transform=from_origin(500000.0, 5100000.0, pixel, pixel)) as dst:
        dst.write(classes.astype("uint8")[None])
    if names:
        from osgeo import gdal

        ds = gdal.Open(str(path), gdal.GA_Update)
        ds.GetRasterBand(1).SetCategoryNames(list(names))
        ds = None
    return str(path)


def write_points(path, xs, ys, values, field="ref", epsg=32633, kind="str"):
    """A GeoPackage of points with one attribute ``field`` (string or integer values)."""
    from osgeo import ogr, osr

    drv = ogr.GetDriverByName("GPKG")
    ds = drv.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    layer = ds.CreateLayer("points", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTString if kind == "str" else ogr.OFTInteger))
    for x, y, v in zip(xs, ys, values):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField(field, v)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
        layer.CreateFeature(f)
    ds = layer = None
    return str(path)


@pytest.fixture(scope="session")
def olofsson_sample(tmp_path_factory):
    """(map path, points path): a 100 x 100 map at 30 m with table 8's class shares, and 640
    points (+1 outside the map) whose map/reference pairs are table 8's counts; the reference
    class is given by name."""
    folder = tmp_path_factory.mktemp("olofsson")
    flat = np.repeat(np.arange(4), OLOFSSON_PIXELS)
    classes = flat.reshape(100, 100)
    map_path = write_class_map(folder / "map.tif", classes, names=OLOFSSON_CLASSES)
    xs, ys, refs = [], [], []
    for i in range(4):
        pixels = np.nonzero(flat == i)[0]
        refs_i = np.repeat(np.arange(4), OLOFSSON_COUNTS[i])
        for pix, ref in zip(pixels[:len(refs_i)], refs_i):
            r, c = divmod(int(pix), 100)
            xs.append(500000.0 + 30 * c + 15)
            ys.append(5100000.0 - 30 * r - 15)
            refs.append(OLOFSSON_CLASSES[ref])
    xs.append(400000.0)
    ys.append(5100000.0)
    refs.append("forest gain")            # outside the map: left out
    return map_path, write_points(folder / "reference.gpkg", xs, ys, refs)


# ------------------------------------------------------------------ the bundled sample
SAMPLE = os.path.join(ROOT, "resources", "sample")


def sample_inputs():
    """modality -> paths of the bundled Slovenia sample (S2 L1C x 5 dates, DEM)."""
    return {"s2": sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))),
            "dem": [os.path.join(SAMPLE, "dem.tif")]}


@pytest.fixture(scope="session")
def west_labels(tmp_path_factory):
    """The GeoPackage of scripts/own_classes_labels.py (seed 0, fewer labels for speed):
    (path, {class: pixels})."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "own_classes_labels", os.path.join(ROOT, "scripts", "own_classes_labels.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = str(tmp_path_factory.mktemp("labels") / "labels.gpkg")
    return path, module.write(path, seed=0, per_class=120)


@pytest.fixture(scope="session")
def v1_segmentation_model(tmp_path_factory):
    """The tiny segmentation model exported with contract version 1 (no 'embeddings')."""
    import dataclasses

    from training.export import export_onnx
    from tests.tiny_model import build_tiny

    net = build_tiny("segmentation")
    path = str(tmp_path_factory.mktemp("v1") / "tiny-seg-v1.onnx")
    export_onnx(net, dataclasses.replace(net.meta, schema_version=1), path)
    return path
