"""Class-map pixel areas for accuracy assessment (a new-user trial: a Web Mercator map's areas
were 2.07x too large). Real GeoTIFFs written by rasterio."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from engine.classmap import read_class_map


def _write(path, crs, transform):
    data = np.zeros((1, 50, 50), np.uint8)
    data[0, :, 25:] = 1
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=1, dtype="uint8",
                       crs=crs, transform=transform, nodata=255) as dst:
        dst.write(data)
    return str(path)


@pytest.mark.parametrize("crs,transform,expected", [
    ("EPSG:32633", Affine(10, 0, 465000, 0, -10, 5080000), 100.0),           # planar, exact
    ("EPSG:3857", Affine(14.36, 0, 1625000, 0, -14.36, 5763000), 100.0),     # 10 m on the ground
    ("EPSG:4326", Affine(0.0001287, 0, 14.6, 0, -0.0000899, 45.9), 100.0),   # ~10 m x ~10 m
])
def test_pixel_area_is_on_the_ground(tmp_path, crs, transform, expected):
    cmap = read_class_map(_write(tmp_path / "m.tif", crs, transform))
    assert cmap.area_unit == "m2"
    assert cmap.pixel_area == pytest.approx(expected, rel=0.01)
    if crs == "EPSG:32633":
        assert cmap.pixel_area == 100.0                     # the conventional planar area
