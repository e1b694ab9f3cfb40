"""engine.preprocessing.dates: the one date reader (names, tags, explicit values), the
time-of-day rule and the stack checks (same file or content twice, TIFFTAG_DATETIME refused,
far dates), on real GeoTIFFs written by rasterio from the Slovenia patch. End to end through
run_model: tests/engine/test_dates_trial.py."""
from __future__ import annotations

import datetime as dt
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError, MaestroError
from engine.preprocessing import dates as D
from engine.stack import collect_stack
from tests.engine.conftest import grid, write_tif
from tests.tiny_model import tiny_metadata


@pytest.mark.parametrize("name,expected", [
    ("S2_20200501T10.tif", dt.datetime(2020, 5, 1, 10)),
    ("S2_20200501.tif", dt.datetime(2020, 5, 1)),
    ("mosaic_2020-05-01.tif", dt.datetime(2020, 5, 1)),
    ("mosaic_2020_05_01_b.tif", dt.datetime(2020, 5, 1)),
    ("scene.2019.07.14.tif", dt.datetime(2019, 7, 14)),
    ("S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449.tif",
     dt.datetime(2019, 1, 3, 10, 44, 31)),
    ("S1A_IW_GRDH_1SDV_20200501T052345_20200501T052410_032361_03BF35_1D40.tif",
     dt.datetime(2020, 5, 1, 5, 23, 45)),
    ("LC08_L1TP_190028_20200501_20200509_02_T1.tif", dt.datetime(2020, 5, 1)),
    ("LC08_L1TP_190028_20200501_20200509_02_T1_B4.TIF", dt.datetime(2020, 5, 1)),
    # product discriminator (generation time) on the next day: the sensing start is read
    ("S2A_MSIL1C_20230101T235421_N0509_R065_T32TQM_20230102T021212.SAFE",
     dt.datetime(2023, 1, 1, 23, 54, 21)),
    ("s2b_msil2a_20200903T151809_N0214_R068_T22WEB_20200907T194353_B04_10m.tif",
     dt.datetime(2020, 9, 3, 15, 18, 9)),
    ("T32TQM_20230101T101421_B04.jp2", dt.datetime(2023, 1, 1, 10, 14, 21)),  # tile band file
    # Sentinel-1 stop time after midnight
    ("S1A_IW_GRDH_1SDV_20200501T235945_20200502T000010_032361_03BF35_1D40.tif",
     dt.datetime(2020, 5, 1, 23, 59, 45)),
    # Sentinel-2 names before 2016-12-06: creation time first, V<sensing start>_<stop>
    ("S2A_OPER_PRD_MSIL1C_PDMC_20160103T202002_R008_V20151230T105153_20151230T105153.SAFE",
     dt.datetime(2015, 12, 30, 10, 51, 53)),
    ("S2A_OPER_MSI_L1C_DS_SGS__20180121T160435_S20180120T141504_N02.06",
     dt.datetime(2018, 1, 20, 14, 15, 4)),
    ("S2A_OPER_MSI_L1C_TL_SGS__20160601T190034_A005000_T18TWL_B04.jp2", None),  # creation only
    ("s2_20200501_2020-05-01T10.tif", dt.datetime(2020, 5, 1)),  # one day written twice
    # two different dates outside a product name: ambiguous, no date from the name
    ("export_20240105_S2_20150711.tif", None),
    ("export_20240105_S2A_MSIL1C_20230101T101421_N0509_R065_T32TQM_20230101T121212.tif", None),
    ("S2_20200501_20200510_composite.tif", None),
    ("/data/20200101/scene.tif", None),                  # folders are not read
    ("x_20201340_20200229.tif", dt.datetime(2020, 2, 29)),
    ("tile_1234567890.tif", None),
    ("2020-05_01.tif", None),                            # mixed separators
])
def test_date_from_name(name, expected):
    assert D.date_from_name(name) == expected


def test_name_dates_lists_the_different_days_in_order():
    assert D.name_dates("export_20240105_S2_20150711T10.tif") == [
        dt.datetime(2024, 1, 5), dt.datetime(2015, 7, 11, 10)]
    assert D.name_dates("S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190104T115449") == [
        dt.datetime(2019, 1, 3, 10, 44, 31)]
    assert D.name_dates("scene.tif") == [] and D.name_dates(None) == []
    with pytest.raises(InputError, match="no date, or more than one"):
        D.product_date("export_20240105_S2_20150711")


def test_training_and_engine_read_one_name_alike():
    """Issue 11 table: training read (2020, 122, 10), the engine (2020, 122, 0)."""
    when = D.date_from_name("S2_20200501T10.tif")
    assert D.date_triplet(when) == (2020, 122, 0)
    assert D.date_triplets([when, dt.date(2020, 5, 1)]).tolist() == [[2020, 122, 0]] * 2
    assert D.product_date(b"S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449") == \
        dt.date(2019, 1, 3)


@pytest.mark.parametrize("value,expected", [
    ("2020-05-01", dt.datetime(2020, 5, 1)),
    ("20200501", dt.datetime(2020, 5, 1)),
    ("2020-05-01T10:30:00Z", dt.datetime(2020, 5, 1, 10, 30)),
    ("2020-05-01T10:30:00.123+02:00", dt.datetime(2020, 5, 1, 10, 30)),
    (dt.date(2020, 5, 1), dt.datetime(2020, 5, 1)),
    (np.datetime64("2020-05-01"), dt.datetime(2020, 5, 1)),
])
def test_explicit_values(value, expected):
    assert D.as_datetime(value) == expected


@pytest.mark.parametrize("value", ["2020-13-01", "2020-05-01xyz", "", "yesterday", 20200501,
                                   None, "2020-02-30"])
def test_explicit_value_not_a_date(value):
    with pytest.raises(InputError, match="not a date|is not"):
        D.as_datetime(value, "date of 'a.tif'")


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_random_strings_never_crash_the_parsers(text):
    """Random text: the parsers return a datetime or None, or raise the engine's error."""
    for fn in (D.parse_date_text, D.date_from_name):
        out = fn(text)
        assert out is None or isinstance(out, dt.datetime)
    for fn in (D.as_datetime, D.parse_yyyymmdd, D.product_date):
        try:
            out = fn(text)
        except MaestroError:
            continue
        assert isinstance(out, (dt.date, dt.datetime))


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
       st.sampled_from(["{:%Y%m%d}", "{:%Y-%m-%d}", "{:%Y_%m_%d}", "{:%Y%m%d}T1030"]),
       st.text(alphabet="abcXYZ_-. ", max_size=8), st.text(alphabet="abcXYZ_-. ", max_size=8))
def test_any_date_in_a_name_is_found(day, fmt, head, tail):
    found = D.date_from_name(head + fmt.format(day) + tail + ".tif")
    assert found is not None and found.date() == day


class _Tags:
    """Stands for an open dataset's metadata (the part date_from_tags reads)."""

    def __init__(self, tags):
        self._tags = tags

    def tags(self, ns=None):
        if ns:
            raise KeyError(ns)                   # a driver without that domain
        return self._tags


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(D.DATE_TAGS) + ["acquisitiondatetime", "OTHER"]),
                       st.text(max_size=30), max_size=6))
def test_random_tag_values_never_crash(tags):
    found = D.date_from_tags(_Tags(tags), sensor_only=False)
    assert found is None or isinstance(found.when, dt.datetime)
    if found is not None and found.source == D.SOURCE_TIFF:
        assert not any(D.parse_date_text(v) for k, v in tags.items()
                       if k.upper() in D.SENSOR_TAGS)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_product_names(raw):
    try:
        D.product_date(raw)
    except MaestroError:
        pass


# ------------------------------------------------------------------------- real GeoTIFFs
@pytest.fixture
def tile(tmp_path, slovenia):
    def make(name, scene=0, tags=None):
        return write_tif(tmp_path / name, slovenia["s2"][scene][:, :8, :8], grid(), nodata=0,
                         tags=tags)
    return make


def _collect(paths):
    lines = []
    stack = collect_stack(tiny_metadata().modality("s2"), paths, lines.append)
    return stack, lines


def test_tifftag_datetime_alone_for_a_stack_is_refused(tile):
    export = {"TIFFTAG_DATETIME": "2024:01:09 11:00:00"}
    paths = [tile(f"scene_{i}.tif", i, export) for i in range(3)]
    with pytest.raises(InputError, match="TIFFTAG_DATETIME.*written.*--date"):
        _collect(paths)
    # written on different days: refused all the same (trial: 2026-11-29 and 2026-11-30 were
    # used as acquisition dates)
    days = [tile(f"day_{i}.tif", i, {"TIFFTAG_DATETIME": f"2024:01:{9 + i:02d} 11:00:00"})
            for i in range(3)]
    with pytest.raises(InputError, match=r"'[^']*day_0\.tif' \(2024-01-09\), '[^']*day_1\.tif' "
                                         r"\(2024-01-10\), .*TIFFTAG_DATETIME.*TIFF 6\.0.*written.*"
                                         r"DATES=day_0\.tif=YYYY-MM-DD.*--date s2=PATH"):
        _collect(days)
    with pytest.raises(InputError, match="TIFFTAG_DATETIME"):       # alone in its stack too
        _collect(days[:1])
    # explicit dates win: accepted
    from engine.types import SliceInput

    stack, _ = _collect([SliceInput(p, f"2015-07-{11 + i}") for i, p in enumerate(days)])
    assert [s.date_source for s in stack] == ["given"] * 3
    # the real date in the file name wins: accepted, no warning
    named = [tile(f"S2_201507{11 + 10 * i}.tif", i, export) for i in range(3)]
    stack, lines = _collect(named)
    assert [s.when.date() for s in stack] == [dt.date(2015, 7, 11), dt.date(2015, 7, 21),
                                              dt.date(2015, 7, 31)]
    assert all(s.date_source == "file name" for s in stack)
    assert not any("warning" in m for m in lines)


def test_tifftag_datetime_for_one_slice_is_refused(tile):
    """Was a warning line and the write day used as the acquisition date."""
    paths = [tile("S2_20150711.tif", 0), tile("scene.tif", 1,
                                              {"TIFFTAG_DATETIME": "2015:08:01 10:00:00"})]
    with pytest.raises(InputError, match=r"no acquisition date for '[^']*scene\.tif' "
                                         r"\(2015-08-01\): the only date found is TIFFTAG") as err:
        _collect(paths)
    assert "S2_20150711" not in str(err.value)
    assert D.find_slice_date(paths[1]).source == D.SOURCE_TIFF
    assert D.read_slice_date(paths[1]) is None              # not a date the engine uses


def test_two_dates_in_a_name_are_refused_unless_given_or_tagged(tile):
    path = tile("export_20240105_S2_20150711.tif", 0,
                {"TIFFTAG_DATETIME": "2024:01:05 11:00:00"})
    with pytest.raises(D.AmbiguousNameDateError,
                       match=r"name of '[^']*export_20240105_S2_20150711\.tif' holds 2 different "
                             r"dates \(2024-01-05, 2015-07-11\).*DATES=export_20240105_S2_"
                             r"20150711\.tif=YYYY-MM-DD.*--date MODALITY="):
        _collect([path, tile("S2_20150811.tif", 1)])
    assert D.read_slice_date(path) is None
    assert D.find_slice_date(path, "2015-07-11").when == dt.datetime(2015, 7, 11)
    tagged = tile("export_20240105_S2_20150721.tif", 2, {"DATE_ACQUIRED": "2015-07-21"})
    assert D.find_slice_date(tagged) == D.DateFound(dt.datetime(2015, 7, 21),
                                                    "tag DATE_ACQUIRED")


def test_same_file_twice_is_refused(tile, tmp_path):
    a = tile("S2_20150711.tif", 0)
    with pytest.raises(InputError, match="same file given twice"):
        _collect([a, a])
    link = str(tmp_path / "S2_20150801.tif")
    os.symlink(a, link)
    with pytest.raises(InputError, match=r"S2_20150711\.tif.*S2_20150801\.tif.*same file"):
        _collect([a, link])
    hard = str(tmp_path / "S2_20150901.tif")
    os.link(a, hard)
    with pytest.raises(InputError, match="same file"):
        _collect([hard, a])


def test_identical_content_twice_is_refused(tile, tmp_path):
    a = tile("S2_20150711.tif", 0)
    b = str(tmp_path / "S2_20150811.tif")
    shutil.copy(a, b)
    with pytest.raises(InputError, match="identical pixels"):
        _collect([a, b, tile("S2_20150911.tif", 2)])


def test_nearly_identical_content_is_accepted(tmp_path, slovenia):
    """One pixel differs outside the fingerprint's windows: the fingerprints agree, the full
    comparison does not."""
    data = slovenia["s2"][0][:, :80, :80]
    a = write_tif(tmp_path / "S2_20150711.tif", data, grid(), nodata=0)
    other = data.copy()
    other[3, 1, 1] += 1
    b = write_tif(tmp_path / "S2_20150811.tif", other, grid(), nodata=0)
    assert D.content_fingerprint(a) == D.content_fingerprint(b) and not D.same_content(a, b)
    stack, _ = _collect([a, b])
    assert len(stack) == 2


def test_date_years_away_is_reported(tile):
    paths = [tile("S2_20150711.tif", 0), tile("S2_20150731.tif", 1), tile("S2_20050820.tif", 2),
             tile("S2_20150909.tif", 3)]
    stack, lines = _collect(paths)
    warned = [m for m in lines if "more than two years" in m]
    assert len(warned) == 1 and "S2_20050820.tif" in warned[0] and "2005-08-20" in warned[0]
    # a regular multi-year series has no gap of two years: nothing reported
    series = [tile(f"S2_{2015 + i // 2}{6 + 3 * (i % 2):02d}01.tif", i) for i in range(5)]
    _, lines = _collect(series)
    assert not any("two years" in m for m in lines)


@pytest.mark.parametrize("name, why", [("S2_19000820.tif", "before the first Earth-observation"),
                                       ("S2_20990820.tif", "after today")])
def test_impossible_acquisition_date_is_refused(tile, name, why):
    """A date before Landsat 1 or in the future is a wrong date whatever the rest of the stack
    (first wave: a 1900 date changed 45.6 % of the map, silently)."""
    with pytest.raises(InputError, match=rf"{name}' is dated .* \(from file name\), {why}"):
        _collect([tile("S2_20150711.tif", 0), tile(name, 1)])
    with pytest.raises(InputError, match=why):        # alone in its stack too
        _collect([tile(name, 1)])


def test_two_rasters_of_one_day_are_reported(tile, tmp_path):
    a = tile("S2_20150711.tif", 0)
    b = tile("S2_20150711_east.tif", 1)
    stack, lines = _collect([a, b, tile("S2_20150811.tif", 2)])
    assert len(stack) == 3
    said = [m for m in lines if "are all dated 2015-07-11" in m]
    assert len(said) == 1 and "S2_20150711.tif" in said[0] and "S2_20150711_east.tif" in said[0]


def test_far_dates_groups():
    d = [("a", dt.datetime(2015, 7, 1)), ("b", dt.datetime(2015, 8, 1)),
         ("c", dt.datetime(1900, 1, 1)), ("e", dt.datetime(1900, 2, 1)),
         ("f", dt.datetime(2015, 9, 1))]
    assert sorted(p for p, _ in D.far_dates(d)) == ["c", "e"]
    assert D.far_dates(d[:2]) == []


def test_single_date_raster_dated_only_by_tifftag_takes_the_reference_date(tmp_path, slovenia):
    from engine.stack import reference_date

    meta = tiny_metadata()
    s2 = [write_tif(tmp_path / f"S2_201507{11 + 10 * i}.tif", slovenia["s2"][i][:, :8, :8],
                    grid(), nodata=0) for i in range(2)]
    dem = write_tif(tmp_path / "dem.tif", slovenia["dem"][:4, :4], grid(20.0),
                    tags={"TIFFTAG_DATETIME": "2024:01:09 11:00:00"})
    lines = []
    stacks = {"s2": collect_stack(meta.modality("s2"), s2, lines.append),
              "dem": collect_stack(meta.modality("dem"), [dem], lines.append)}
    assert any("dem.tif has only TIFFTAG_DATETIME (2024-01-09)" in m for m in lines)
    assert reference_date(meta, stacks) == dt.datetime(2015, 7, 11)
    assert stacks["dem"][0].when == dt.datetime(2015, 7, 11)
    assert stacks["dem"][0].date_source == "reference date"
