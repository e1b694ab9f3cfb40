"""Similarity examples smaller than a cell of the encoder-feature grid (a new-user trial: four
small 'artificial surface' polygons gave "no example falls on a valid pixel ... check the CRS",
though CRS and extent were right): they take the cells they touch."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.classes.similarity import query_vector
from engine.errors import InputError


def test_a_polygon_inside_one_cell_takes_that_cell(tmp_path):
    path = str(tmp_path / "emb.tif")
    data = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=3, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(0, 160, 40, 40)) as dst:
        dst.write(data)
    # a 10 m square in the cell of row 1, col 2 (x 80-120, y 80-120), away from its centre
    square = {"type": "Polygon", "coordinates": [[(82, 112), (92, 112), (92, 118), (82, 118),
                                                  (82, 112)]]}
    vector, n = query_vector(path, [square], "EPSG:32633")
    assert n == 1 and np.allclose(vector, data[:, 1, 2])
    outside = {"type": "Polygon", "coordinates": [[(500, 500), (510, 500), (510, 510),
                                                   (500, 510), (500, 500)]]}
    with pytest.raises(InputError, match="cells of 40 CRS units"):
        query_vector(path, [outside], "EPSG:32633")
