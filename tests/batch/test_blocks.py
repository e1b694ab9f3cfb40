"""Block planning on the reference grid of the real Slovenia patch: areas given as a raster, a
vector layer (in another CRS), bounds, or explicit block extents."""
from __future__ import annotations

import json

import pytest

from engine.batch.blocks import ReferenceGrid, explicit_blocks, parse_bounds, split_area
from engine.batch.runner import plan_blocks
from engine.contract import read_model_metadata
from engine.errors import InputError


@pytest.fixture(scope="module")
def grid(slovenia_inputs):
    return ReferenceGrid.from_raster(slovenia_inputs["s2"][0])


@pytest.fixture(scope="module")
def meta(tiny_models):
    return read_model_metadata(tiny_models["segmentation"])


def covered(blocks):
    """Set of reference pixels (row, col) covered, and the number of covers (overlaps)."""
    cells, count = set(), 0
    for b in blocks:
        c, r, w, h = b.window
        for rr in range(r, r + h):
            for cc in range(c, c + w):
                cells.add((rr, cc))
                count += 1
    return cells, count


def test_whole_raster_is_partitioned_on_the_tile_grid(grid, meta):
    blocks = plan_blocks(meta, grid, block_px=40)               # rounded up to 48 (tile 16)
    assert [b.window for b in blocks[:3]] == [(0, 0, 48, 48), (48, 0, 48, 48), (96, 0, 4, 48)]
    cells, count = covered(blocks)
    assert len(cells) == count == 101 * 100                     # a partition: no gap, no overlap
    for b in blocks:
        assert b.window[0] % 16 == 0 and b.window[1] % 16 == 0   # origins on the tile grid
        assert b.bounds == grid.window_bounds(b.window)


def test_block_ids_are_stable_whatever_the_area(grid, meta):
    whole = {b.id: b.window for b in plan_blocks(meta, grid, block_px=32)}
    # A sub-area: its blocks are the same global blocks (same ids), cut to the aligned area.
    x, y = grid.x0 + 40 * grid.res_x, grid.y0 - 40 * grid.res_y
    sub = plan_blocks(meta, grid, block_px=32, area_bounds=(x, y - 300, x + 300, y))
    assert [b.id for b in sub] == ["r00001_c00001", "r00001_c00002", "r00002_c00001",
                                   "r00002_c00002"]
    for b in sub:
        wc, wr, ww, wh = whole[b.id]
        c, r, w, h = b.window
        assert wc <= c and wr <= r and c + w <= wc + ww and r + h <= wr + wh
        assert c % 16 == 0 and r % 16 == 0
    assert sub[-1].window == (64, 64, 16, 16)                   # rows/cols 40..70 -> 32..80


def test_area_from_a_vector_layer_in_another_crs(grid, meta, tmp_path):
    from rasterio.warp import transform_bounds

    # The north-west quarter of the patch, given in WGS 84.
    q = (grid.x0 + 1, grid.y0 - 500, grid.x0 + 490, grid.y0 - 1)
    lon0, lat0, lon1, lat1 = transform_bounds(grid.crs_wkt, "EPSG:4326", *q)
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1],
                                                         [lon0, lat1], [lon0, lat0]]]}}]}))
    blocks = plan_blocks(meta, grid, block_px=64, area_vector=str(path))
    cells, _ = covered(blocks)
    rows = {r for r, _ in cells}
    cols = {c for _, c in cells}
    assert min(rows) == 0 and min(cols) == 0
    assert 49 <= max(rows) < 64 and 48 <= max(cols) < 64       # snapped out to the tile grid


def test_area_from_a_raster_extent(grid, meta, slovenia_inputs):
    blocks = plan_blocks(meta, grid, block_px=64, area_raster=slovenia_inputs["dem"][0])
    cells, count = covered(blocks)                               # the 20 m DEM covers it all
    assert len(cells) == count == 101 * 100


def test_explicit_block_extents_are_snapped_and_checked(grid, meta):
    e1 = (grid.x0 + 5, grid.y0 - 155, grid.x0 + 155, grid.y0 - 5)
    blocks = plan_blocks(meta, grid, block_px=64, block_extents=[e1])
    assert [(b.id, b.window) for b in blocks] == [("b00000", (0, 0, 16, 16))]
    with pytest.raises(InputError, match="snap to the same window"):
        explicit_blocks(grid, [e1, e1], 16)
    with pytest.raises(InputError, match="does not intersect"):
        explicit_blocks(grid, [(0.0, 0.0, 10.0, 10.0)], 16)


def test_bad_areas_are_refused(grid, meta):
    with pytest.raises(InputError, match="does not intersect the reference raster"):
        split_area(grid, (0.0, 0.0, 100.0, 100.0), 32, 16)
    with pytest.raises(InputError, match="inverted"):
        split_area(grid, (10.0, 0.0, 0.0, 100.0), 32, 16)
    with pytest.raises(InputError, match="at most one area"):
        plan_blocks(meta, grid, 32, area_bounds=(0, 0, 1, 1), block_extents=[(0, 0, 1, 1)])
    with pytest.raises(InputError, match="four numbers"):
        parse_bounds("1,2,3")
    assert parse_bounds("1, 2, 3, 4") == (1.0, 2.0, 3.0, 4.0)
