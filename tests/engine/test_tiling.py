"""engine/tiling.py: the tile grid (overlap, quantum, edges, sub-ranges) and the offset
quantum of multi-resolution models."""
from __future__ import annotations

import pytest

from engine.contract import build_metadata
from engine.errors import InputError
from engine.tiling import TileGrid, offset_quantum


def _meta(dem_tile_px: int):
    def mod(name, tile_px, gsd):
        return {"name": name, "bands": ["b"], "gsd_m": gsd, "tile_px": tile_px, "patch_px": 2,
                "min_dates": 1, "max_dates": 1, "nodata": {"fill_value": 0.0},
                "scaling": {"transform": "none", "mean": [0.0], "std": [1.0]}}
    return build_metadata(name="q", task="embedding", reference_modality="s2",
                          modalities=[mod("s2", 16, 10.0), mod("dem", dem_tile_px,
                                                                160.0 / dem_tile_px)],
                          embedding_dim=4, provenance={"training_data": "-", "licence": "MIT",
                                                       "metrics": {}})


def test_offset_quantum_makes_offsets_whole_on_every_grid():
    assert offset_quantum(_meta(16)) == 1
    assert offset_quantum(_meta(8)) == 2              # 20 m DEM: every 2nd reference pixel
    assert offset_quantum(_meta(8), extra=3) == 6     # and a multiple of the extra (patch)
    assert offset_quantum(_meta(4), extra=2) == 4


@pytest.mark.parametrize("width, height, overlap, quantum", [
    (100, 101, 25, 1), (100, 101, 25, 2), (37, 16, 50, 4), (16, 16, 0, 1), (10, 5, 25, 1),
    (203, 64, 75, 2),
])
def test_tiles_cover_every_pixel_on_the_quantum(width, height, overlap, quantum):
    grid = TileGrid.build(width, height, 16, overlap, quantum)
    assert grid.stride % quantum == 0 and grid.stride >= quantum
    assert grid.stride == max(quantum, (16 - round(16 * overlap / 100)) // quantum * quantum)
    for origins, size in ((grid.rows, height), (grid.cols, width)):
        assert list(origins) == sorted(set(origins)) and origins[0] == 0
        assert all(o % quantum == 0 for o in origins)
        covered = set()
        for o in origins:
            covered.update(range(o, o + 16))
        assert set(range(size)) <= covered
        assert origins[-1] < max(size, 16)             # no tile wholly outside the raster
    assert grid.padded_width >= width and grid.padded_height >= height


def test_classification_tiles_do_not_overlap():
    grid = TileGrid.build(100, 40, 16, 50, 1, no_overlap=True)
    assert grid.stride == 16 and grid.cols[:3] == (0, 16, 32)


def test_tiles_of_a_sub_range_are_the_full_grids_tiles_that_touch_it():
    grid = TileGrid.build(120, 90, 16, 25, 2)
    everything = grid.tiles()
    assert len(everything) == len(grid.rows) * len(grid.cols)
    part = grid.tiles((30, 50), (70, 71))
    assert part and set(part) <= set(everything)
    assert all(r < 50 and r + 16 > 30 and c <= 70 < c + 16 for r, c in part)
    assert {t for t in everything if t[0] < 50 and t[0] + 16 > 30 and t[1] < 71
            and t[1] + 16 > 70} == set(part)


@pytest.mark.parametrize("overlap", [-1, 76, 100])
def test_overlap_outside_0_75_is_refused(overlap):
    with pytest.raises(InputError, match="between 0 and 75"):
        TileGrid.build(100, 100, 16, overlap, 1)
