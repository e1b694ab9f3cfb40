"""Slice dates (explicit > GDAL tags > file name), stack sorting and subsampling, tile grid."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from engine.dates import date_from_name, date_triplet, parse_date_text, read_slice_date
from engine.errors import InputError
from engine.stack import collect_stack
from engine.tiling import TileGrid, offset_quantum
from tests.engine.conftest import grid, write_tif
from tests.tiny_model import tiny_metadata


@pytest.fixture
def tile(tmp_path, slovenia):
    made = []

    def make(name, tags=None, bands=10):
        r = len(made)          # a different crop per file: copies of one raster are refused
        made.append(name)
        return write_tif(tmp_path / name, slovenia["s2"][0][:bands, r:r + 8, :8], grid(),
                         nodata=0, tags=tags)
    return make


def test_date_from_tags_in_order(tile):
    assert read_slice_date(tile("a.tif", {"ACQUISITIONDATETIME": "2021-06-03T10:20:00Z"})) == \
        dt.date(2021, 6, 3)
    # TIFFTAG_DATETIME (the file write time) is no acquisition date: the engine reads none
    # (a time stack of such files is refused: tests/engine/test_dates_trial.py) ...
    assert read_slice_date(tile("b.tif", {"TIFFTAG_DATETIME": "2019:04:05 11:00:00"})) is None
    # ... a date in the file name or a sensor tag is read, whatever it says
    assert read_slice_date(tile("S2_20200501.tif", {"TIFFTAG_DATETIME": "2024:01:09 11:00:00"})) \
        == dt.date(2020, 5, 1)
    assert read_slice_date(tile("b2.tif", {"TIFFTAG_DATETIME": "2024:01:09 11:00:00",
                                           "SENSING_TIME": "2020-05-01T10:10:31.024Z"})) == \
        dt.date(2020, 5, 1)
    assert read_slice_date(tile("c.tif", {"DATE_ACQUIRED": "2018-09-30"})) == dt.date(2018, 9, 30)
    # tags win over the file name
    assert read_slice_date(tile("s2_20200101.tif", {"DATE_ACQUIRED": "2018-09-30"})) == \
        dt.date(2018, 9, 30)


def test_acquisition_datetime_in_imagery_domain(tmp_path, slovenia):
    import rasterio

    path = write_tif(tmp_path / "x.tif", slovenia["dem"][:4, :4], grid())
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(ns="IMAGERY", ACQUISITIONDATETIME="2017-03-12T10:07:06Z")
    assert read_slice_date(path) == dt.date(2017, 3, 12)


def test_date_from_file_name(tile):
    assert read_slice_date(tile("S2A_MSIL1C_20200501T101031_N0209.tif")) == dt.date(2020, 5, 1)
    assert read_slice_date(tile("s2_2019-07-14_l2a.tif")) == dt.date(2019, 7, 14)
    assert read_slice_date(tile("s2_scene.tif")) is None
    assert date_from_name("x_20201340_20200229.tif") == dt.datetime(2020, 2, 29)  # skips 13th month
    assert date_from_name("tile_1234567890.tif") is None


def test_parse_and_triplet():
    when = parse_date_text("2020-12-31T23:10:00")
    assert date_triplet(when) == (2020, 366, 0)                   # the rule: hour 0
    assert date_triplet(when, keep_hour=True) == (2020, 366, 23)  # contract version 1 only
    assert date_triplet(dt.date(2021, 1, 1)) == (2021, 1, 0)
    assert date_triplet(dt.date(2021, 1, 1), keep_hour=True) == (2021, 1, 0)
    assert parse_date_text("not a date") is None


def test_stack_sorted_subsampled_and_checked(tile):
    spec = tiny_metadata().modality("s2")
    paths = [tile(f"s2_2020{m:02d}01.tif") for m in (9, 3, 1, 7, 5, 11, 2, 4)]
    lines = []
    stack = collect_stack(spec, paths, lines.append)
    months = [s.when.month for s in stack]
    assert months == sorted(months) and len(months) == 6 and months[0] == 1 and months[-1] == 11
    assert lines[0].startswith("warning: s2: 8 dates given")      # shown as a warning
    dropped = lines[0].split("), not ")[1].split(";")[0].split(", ")
    assert len(dropped) == 2 and all(d not in [s.when.date().isoformat() for s in stack]
                                     for d in dropped)
    with pytest.raises(InputError, match="has 0 date|no input raster"):
        collect_stack(spec, [], lines.append)
    dem = tiny_metadata().modality("dem")
    with pytest.raises(InputError, match="expects 1"):
        collect_stack(dem, [paths[0]], lines.append)


def test_fewer_than_min_dates(tile):
    doc = tiny_metadata().to_dict()
    doc["modalities"][0]["min_dates"] = 3
    from engine.contract import parse_metadata

    spec = parse_metadata(doc).modality("s2")
    with pytest.raises(InputError, match="has 2 date\\(s\\) but the model needs at least 3"):
        collect_stack(spec, [tile("s2_20200101.tif"), tile("s2_20200201.tif")], lambda m: None)


@pytest.mark.parametrize("width,height,overlap", [(100, 101, 25), (9, 11, 25), (64, 64, 0),
                                                  (333, 17, 50)])
def test_tile_grid_covers_every_pixel_on_whole_offsets(width, height, overlap):
    meta = tiny_metadata()
    q = offset_quantum(meta)
    assert q == 2  # DEM tile 8 px for 16 S2 px: offsets must be even
    g = TileGrid.build(width, height, 16, overlap, q)
    seen = np.zeros((height, width), int)
    for r, c in g.tiles():
        assert r % q == 0 and c % q == 0
        seen[r:r + 16, c:c + 16] += 1
    assert (seen >= 1).all()
    assert g.padded_width - width < 16 and g.padded_height - height < 16
    # a sub-area gets exactly the whole-run tiles that touch it
    sub = g.tiles((5, 9), (3, 40))
    assert sub == [t for t in g.tiles() if t[0] < 9 and t[0] + 16 > 5 and t[1] < 40 and t[1] + 16 > 3]


def test_streamed_rows_each_written_once():
    from engine.blend import RowAccumulator

    written = []
    acc = RowAccumulator(2, (0, 40), (0, 30), 16,
                         lambda row, s, w, v: written.append((row, s.shape[1], (s / w).copy())))
    g = TileGrid.build(30, 40, 16, 25, 2)
    for r, c in g.tiles():
        acc.add(np.full((2, 16, 16), 3.0, "float32"), np.ones((16, 16), bool), r, c)
    acc.finish()
    rows = [r for r, n, _ in written for r in range(r, r + n)]
    assert rows == list(range(40))
    assert all(np.allclose(v, 3.0) for _, _, v in written)   # constant in, constant out: no seams
    assert acc.sums.shape == (2, 16, 30)                       # memory: one tile of rows


def test_gdal_cache_cap_is_restored_after_overlapping_runs():
    from osgeo import gdal

    from engine.runner import CACHE_FLOOR_BYTES, bounded_gdal_cache

    before = gdal.GetCacheMax()
    big = 64 * 2 ** 20
    with bounded_gdal_cache(0, lambda m: None):
        assert gdal.GetCacheMax() == min(before, CACHE_FLOOR_BYTES)
        with bounded_gdal_cache(big, lambda m: None):           # a second run in another thread
            assert gdal.GetCacheMax() == min(before, CACHE_FLOOR_BYTES + 2 * big)
        assert gdal.GetCacheMax() == min(before, CACHE_FLOOR_BYTES)
    assert gdal.GetCacheMax() == before
