"""New-user trial, acquisition dates (two silent wrong maps, exit 0): end to end through
engine.api.run_model with the bundled model and the bundled Sentinel-2 sample + DEM, on real
GeoTIFFs rewritten by rasterio.

1. ``TIFFTAG_DATETIME`` (TIFF 6.0: when the FILE was written) was used as the acquisition
   date when files had different write days (2026-11-29 / 2026-11-30): now a slice whose only
   date is that tag is refused, naming the file and how to give the date.
2. ``export_20240105_S2_20150711.tif`` (export day + acquisition day) was dated 2024-01-05 (the
   first date of the name): a generic name with two different dates is now refused unless an
   explicit date or a sensor tag decides; Sentinel-2 product names keep their sensing date.
"""
from __future__ import annotations

import datetime as dt
import glob
import os

import numpy as np
import pytest

from engine.api import RunOptions, SliceInput, run_model
from engine.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
SAMPLE = os.path.join(ROOT, "resources", "sample")
S2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
DEM = os.path.join(SAMPLE, "dem.tif")
#: the sample's acquisition days, from the file names S2_L1C_YYYYMMDD.tif
DAYS = [f"{n[-12:-8]}-{n[-8:-6]}-{n[-6:-4]}" for n in S2]
#: write times as the trial's export had them: two different days
WRITTEN = ["2026:11:30 12:00:00"] * 3 + ["2026:11:29 09:00:00"] * 2


def _copy(src: str, dst, tags: dict | None = None) -> str:
    """``src`` rewritten as a GeoTIFF ``dst`` (same grid, pixels, bands, tags) without its
    ACQUISITIONDATETIME and TIFFTAG_DATETIME, then ``tags`` set (TIFFTAG_DATETIME is stored in
    the TIFF DateTime tag by GDAL)."""
    import rasterio

    with rasterio.open(src) as s:
        profile = dict(s.profile)
        data, descriptions = s.read(), s.descriptions
        kept = {k: v for k, v in s.tags().items()
                if k not in ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME")}
    with rasterio.open(dst, "w", **profile) as d:
        d.write(data)
        d.descriptions = descriptions
        d.update_tags(**kept, **(tags or {}))
    return str(dst)


def _tags(path: str) -> dict:
    import rasterio

    with rasterio.open(path) as s:
        return s.tags()


def _run(s2, tmp_path, name="map.tif", dem=DEM):
    import rasterio

    out = str(tmp_path / name)
    report = run_model(MODEL, {"s2": s2, "dem": [dem]}, out, RunOptions())
    with rasterio.open(out) as src:
        return report, src.read(1)


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """The sample rewritten as S2_YYYYMMDD.tif with no date tag: dated by the file names only
    (hour 0, like an explicit date), and the map they give."""
    folder = tmp_path_factory.mktemp("named")
    paths = [_copy(p, folder / f"S2_{d.replace('-', '')}.tif") for p, d in zip(S2, DAYS)]
    report, lc = _run(paths, folder)
    assert report.dates["s2"] == DAYS
    return paths, lc


@pytest.fixture
def written(tmp_path):
    """The trial's /tmp/trial/d2/tiffdt: scene_a..e.tif, no date but TIFFTAG_DATETIME, on two
    different write days."""
    paths = [_copy(p, tmp_path / f"scene_{'abcde'[i]}.tif", {"TIFFTAG_DATETIME": w})
             for i, (p, w) in enumerate(zip(S2, WRITTEN))]
    assert _tags(paths[0])["TIFFTAG_DATETIME"] == WRITTEN[0]          # really in the file
    assert "ACQUISITIONDATETIME" not in _tags(paths[0])
    return paths


# ----------------------------------------------------------------- 1. TIFFTAG_DATETIME
def test_write_times_on_two_days_are_refused_naming_the_files(written, tmp_path):
    out = tmp_path / "map.tif"
    with pytest.raises(InputError) as err:
        run_model(MODEL, {"s2": written, "dem": [DEM]}, str(out), RunOptions())
    msg = str(err.value)
    for path in written:
        assert f"'{path}'" in msg
    assert "(2026-11-30)" in msg and "(2026-11-29)" in msg
    assert "TIFFTAG_DATETIME" in msg and "written" in msg and "TIFF 6.0" in msg
    # how to give the date: Processing, command line, file name, tag
    assert "DATES=scene_a.tif=YYYY-MM-DD" in msg and "--date s2=PATH=YYYY-MM-DD" in msg
    assert "YYYYMMDD in the file name" in msg and "ACQUISITIONDATETIME" in msg
    assert not out.exists()


def test_one_slice_dated_only_by_its_write_time_is_refused(written, named, tmp_path):
    paths = named[0][:4] + [written[4]]
    with pytest.raises(InputError, match=r"no acquisition date for '[^']*scene_e\.tif' "
                                         r"\(2026-11-29\)") as err:
        _run(paths, tmp_path)
    assert "S2_2015" not in str(err.value)          # only the undated file is named


def test_write_times_with_explicit_dates_give_the_map_of_the_real_dates(written, named,
                                                                        tmp_path):
    report, lc = _run([SliceInput(p, d) for p, d in zip(written, DAYS)], tmp_path)
    assert report.dates["s2"] == DAYS
    assert np.array_equal(lc, named[1])


def test_file_name_dates_win_over_the_write_time(named, tmp_path):
    paths = [_copy(p, tmp_path / f"export_S2_{d.replace('-', '')}.tif",
                   {"TIFFTAG_DATETIME": w}) for p, d, w in zip(S2, DAYS, WRITTEN)]
    report, lc = _run(paths, tmp_path)
    assert report.dates["s2"] == DAYS
    assert np.array_equal(lc, named[1])
    assert not any("TIFFTAG" in m for m in report.messages)


def test_dem_dated_only_by_its_write_time_takes_the_reference_date(named, tmp_path):
    """A single-date modality's date is not a model input to get right: its write time is
    dropped and it takes the run's reference date, as an undated DEM does."""
    dem = _copy(DEM, tmp_path / "dem.tif", {"TIFFTAG_DATETIME": "2026:11:30 12:00:00"})
    report, lc = _run(named[0], tmp_path, dem=dem)
    assert report.dates["dem"] == [DAYS[0]]
    assert np.array_equal(lc, named[1])


# ----------------------------------------------------------- 2. two dates in one name
@pytest.fixture
def export_named(tmp_path):
    """The trial's /tmp/trial/d2/twodates: export_20240105_S2_<acquisition>.tif."""
    return [_copy(p, tmp_path / f"export_20240105_S2_{d.replace('-', '')}.tif")
            for p, d in zip(S2, DAYS)]


def test_name_with_an_export_day_and_an_acquisition_day_is_refused(export_named, tmp_path):
    out = tmp_path / "map.tif"
    with pytest.raises(InputError) as err:
        run_model(MODEL, {"s2": export_named, "dem": [DEM]}, str(out), RunOptions())
    msg = str(err.value)
    assert f"'{export_named[0]}'" in msg
    assert "2 different dates (2024-01-05, 2015-07-11)" in msg
    assert "DATES=export_20240105_S2_20150711.tif=YYYY-MM-DD" in msg and "--date" in msg
    assert "ACQUISITIONDATETIME" in msg
    assert not out.exists()


def test_two_date_names_with_explicit_dates_or_a_sensor_tag_run(export_named, named, tmp_path):
    report, lc = _run([SliceInput(p, d) for p, d in zip(export_named, DAYS)], tmp_path)
    assert report.dates["s2"] == DAYS and np.array_equal(lc, named[1])
    tagged = [_copy(p, tmp_path / f"tag_20240105_S2_{d.replace('-', '')}.tif",
                    {"ACQUISITIONDATETIME": d}) for p, d in zip(S2, DAYS)]
    report, lc = _run(tagged, tmp_path, "tagged.tif")
    assert report.dates["s2"] == DAYS and np.array_equal(lc, named[1])


def test_sentinel2_product_names_keep_their_sensing_date(named, tmp_path):
    """S2 product names hold the sensing start, then the product discriminator (generation
    time), here on the next day: the sensing date is used, the name is not ambiguous."""
    def name(day):
        generated = dt.date.fromisoformat(day) + dt.timedelta(days=1)
        return (f"S2A_MSIL1C_{day.replace('-', '')}T100008_N0204_R122_T33TVM_"
                f"{generated:%Y%m%d}T010203.tif")

    paths = [_copy(p, tmp_path / name(d)) for p, d in zip(S2, DAYS)]
    report, lc = _run(paths, tmp_path)
    assert report.dates["s2"] == DAYS
    assert np.array_equal(lc, named[1])
