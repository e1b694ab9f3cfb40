"""engine/writer.py on real GeoTIFFs: class rasters (colour table, category names, nodata),
float rasters (NaN, band names), COG layout, the temporary name, abort and refusals.
(Stale temporaries of dead processes: tests/engine/test_leftovers.py.)"""
from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from engine.contract import ClassSpec
from engine.errors import OutputError
from engine.writer import CLASS_NODATA, RasterWriter, check_writable

CLASSES = (ClassSpec(0, "forest", "#00aa00"), ClassSpec(1, "water", "#0000ff"))
GEO = dict(crs=CRS.from_epsg(32633), transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5100000.0))


def _visible(folder):
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


@pytest.mark.parametrize("cog", [True, False])
def test_class_raster_has_colours_names_and_nodata(tmp_path, cog):
    path = tmp_path / "classes.tif"
    w = RasterWriter(str(path), width=300, height=70, count=1, dtype="uint8", cog=cog,
                     classes=CLASSES, band_names=["class"], **GEO)
    data = np.zeros((1, 70, 300), np.uint8)
    data[0, :, 150:] = 1
    data[0, 60:] = CLASS_NODATA
    w.write_rows(0, data[:, :40])
    assert not path.exists()                          # written under a temporary name
    w.write_rows(40, data[:, 40:])
    assert w.commit() == str(path)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    with rasterio.open(path) as src:
        assert src.read().tolist() == data.tolist()
        assert src.nodata == CLASS_NODATA and src.crs == GEO["crs"]
        assert src.transform == GEO["transform"] and src.descriptions == ("class",)
        cmap = src.colormap(1)
        assert cmap[0][:3] == (0, 170, 0) and cmap[1][:3] == (0, 0, 255)
        assert cmap[CLASS_NODATA][3] == 0
        layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
        assert (layout == "COG") == cog
    assert _visible(tmp_path) == ["classes.tif", "classes.tif.aux.xml"]
    from osgeo import gdal

    ds = gdal.Open(str(path))
    ds.GetGeoTransform()  # as a client does first: GDAL 3.6 then loads the .aux.xml (PAM)
    band = ds.GetRasterBand(1)
    names = band.GetCategoryNames()
    del band, ds          # band first (GDAL's Python bindings)
    assert names[:2] == ["forest", "water"]


def test_float_raster_keeps_nan_and_band_names(tmp_path):
    path = tmp_path / "scores.tif"
    w = RasterWriter(str(path), width=20, height=10, count=2, dtype="float32", cog=True,
                     band_names=["forest", "water"], **GEO)
    data = np.linspace(0, 1, 400, dtype=np.float32).reshape(2, 10, 20)
    data[:, 0, 0] = np.nan
    w.write_rows(0, data)
    w.commit()
    with rasterio.open(path) as src:
        out = src.read()
        assert np.isnan(src.nodata) and src.descriptions == ("forest", "water")
    np.testing.assert_array_equal(out, data)


def test_abort_leaves_nothing_and_keeps_an_older_file(tmp_path):
    path = tmp_path / "out.tif"
    path.write_bytes(b"older result")
    w = RasterWriter(str(path), width=8, height=8, count=1, dtype="uint8", **GEO)
    w.write_rows(0, np.ones((1, 8, 8), np.uint8))
    w.abort()
    assert path.read_bytes() == b"older result" and _visible(tmp_path) == ["out.tif"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_unwritable_destinations_are_refused_naming_the_path(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(str(tmp_path / "missing" / "out.tif"))
    with pytest.raises(OutputError, match="it is a folder"):
        check_writable(str(tmp_path))
    with pytest.raises(OutputError, match="empty path"):
        RasterWriter(" ", width=8, height=8, count=1, dtype="uint8", **GEO)
