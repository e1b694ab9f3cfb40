"""The run report's dates are the dates the model saw: a date with no valid pixel in the tiles
computed (fully cloud-masked, or outside its raster's data there) is masked out of every
tile, so it is not reported as used, and the log names it. Real Slovenia GeoTIFFs, the tiny
models exported by our training code."""
from __future__ import annotations

import numpy as np
import rasterio

from engine.api import RunOptions, run_model
from tests.engine.conftest import SCENE_DATES


def _blank(index):
    def edit(i, data):
        if i == index:
            data[:] = 0                          # the rasters' declared nodata
    return edit


def test_fully_nodata_date_is_not_reported_as_used(tiny_models, scene, tmp_path):
    blank = 2                                    # SCENE_DATES[2] = 2015-09-09
    inputs = scene(rows=48, cols=48, s2_edit=_blank(blank))
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(tile_overlap_pct=0))
    expected = sorted(d for k, d in enumerate(SCENE_DATES) if k != blank)
    assert report.dates["s2"] == expected
    assert any(SCENE_DATES[blank] in line and "has no valid pixel" in line
               for line in report.messages)
    # the model did not see it: the map equals the run without that file
    (tmp_path / "without").mkdir()
    without = scene(rows=48, cols=48, dates=[k for k in range(5) if k != blank],
                    folder=str(tmp_path / "without"))
    run_model(tiny_models["segmentation"], without, str(tmp_path / "w.tif"),
              RunOptions(tile_overlap_pct=0))
    with rasterio.open(tmp_path / "o.tif") as a, rasterio.open(tmp_path / "w.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())      # measured: 100 % equal


def test_date_empty_only_outside_the_bounds_is_reported_for_its_area(tiny_models, scene,
                                                                       tmp_path):
    """A date whose data covers only the right half counts in a run over the right half, not
    in a run over the left half."""
    def left_blank(i, data):
        if i == 0:
            data[:, :, :24] = 0
    inputs = scene(rows=48, cols=48, s2_edit=left_blank)
    with rasterio.open(inputs["s2"][0]) as src:
        x0, y1 = src.transform.c, src.transform.f
    px = 10.0
    left = (x0, y1 - 48 * px, x0 + 16 * px, y1)
    right = (x0 + 32 * px, y1 - 48 * px, x0 + 48 * px, y1)
    opts = dict(tile_overlap_pct=0)
    r_left = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "l.tif"),
                       RunOptions(bounds=left, **opts))
    r_right = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "r.tif"),
                        RunOptions(bounds=right, **opts))
    assert SCENE_DATES[0] not in r_left.dates["s2"]
    assert SCENE_DATES[0] in r_right.dates["s2"]
    assert r_left.dates["dem"] == r_right.dates["dem"] == [min(SCENE_DATES)]


def test_share_of_nodata_output_is_logged(tiny_models, scene, tmp_path):
    """A DEM void inside the DEM's extent makes part of the map nodata: the log gives the share
    (a new-user trial saw 15 % of the map nodata without a word)."""
    def void(dem):
        dem[5:15, 5:15] = -9999.0                            # the DEM's declared nodata
    inputs = scene(rows=48, cols=48, dem_edit=void)
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(tile_overlap_pct=0))
    with rasterio.open(report.output_path) as src:
        data = src.read(1)
        share = 100.0 * float(np.mean(data == src.nodata))
    line = next(m for m in report.messages if "of the output pixels are nodata" in m)
    assert abs(float(line.split(" %")[0]) - share) < 0.05 and share > 10


def test_bounds_over_nodata_only_warn_and_report_no_dates(tiny_models, scene, tmp_path):
    def blank_west(i, data):
        data[:, :, :32] = 0
    inputs = scene(rows=48, cols=48, s2_edit=blank_west)
    with rasterio.open(inputs["s2"][0]) as src:
        x0, y1 = src.transform.c, src.transform.f
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(tile_overlap_pct=0, bounds=(x0, y1 - 160, x0 + 160, y1)))
    assert report.tiles == 0 and report.dates == {"s2": [], "dem": []}
    assert any(m.startswith("warning: no tile has valid data") for m in report.messages)


def test_batches_in_flight_never_exceed_the_threads_on_cpu(tiny_models, scene, tmp_path):
    report = run_model(tiny_models["segmentation"], scene(rows=32, cols=32),
                       str(tmp_path / "o.tif"),
                       RunOptions(device="cpu", threads=1, batches_in_flight=3))
    text = "\n".join(report.messages)
    assert "1 batch(es) in flight, 1 thread(s) each" in text
    assert "3 batches in flight asked for, 1 used" in text


def test_float16_from_the_environment_is_reported_ignored_on_cpu(tiny_models, scene, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MAESTRO_FLOAT16", "1")
    report = run_model(tiny_models["segmentation"], scene(rows=32, cols=32),
                       str(tmp_path / "o.tif"), RunOptions(device="cpu", threads=1))
    assert any("float16 is used on CUDA only" in m for m in report.messages)


def test_two_tiles_of_a_single_date_modality_ask_for_a_mosaic(tiny_models, scene, slovenia,
                                                              tmp_path):
    """A new-user trial gave two DEM tiles: the error spoke of dates, and following it gave a
    half map. The DEM takes one raster: the error says to mosaic the tiles."""
    import pytest

    from engine.errors import InputError
    from tests.engine.conftest import grid, write_tif

    inputs = scene(rows=32, cols=32)
    west = write_tif(str(tmp_path / "dem_west.tif"), slovenia["dem"][:16, :8], grid(20.0))
    east = write_tif(str(tmp_path / "dem_east.tif"), slovenia["dem"][:16, 8:16],
                     grid(20.0, x0=465181.05 + 160))
    with pytest.raises(InputError, match="takes one raster .* mosaic first .*gdalbuildvrt"):
        run_model(tiny_models["segmentation"], {"s2": inputs["s2"], "dem": [west, east]},
                  str(tmp_path / "o.tif"))


def test_all_nodata_rasters_are_named_as_such(tiny_models, scene, tmp_path):
    import pytest

    from engine.errors import InputError

    def blank(i, data):
        if i in (1, 3):
            data[:] = 0
    inputs = scene(rows=32, cols=32, s2_edit=blank)
    with pytest.raises(InputError, match="hold no valid pixel at all"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"))


def test_a_given_date_that_contradicts_the_acquisition_tag_is_warned(tmp_path):
    """A new-user trial: --date 2015-07-12 for a raster tagged 2015-07-11 was used without a
    word. The given date wins (it may correct a tag) and the log says they differ."""
    import datetime as dt
    import glob
    import os

    from engine.api import SliceInput
    from tests.conftest import ROOT

    sample = os.path.join(ROOT, "resources", "sample")
    s2 = sorted(glob.glob(os.path.join(sample, "S2_L1C_*.tif")))
    model = glob.glob(os.path.join(ROOT, "resources", "models", "*.onnx"))[0]
    given = [SliceInput(s2[0], dt.date(2015, 7, 12))] + s2[1:]
    report = run_model(model, {"s2": given, "dem": [os.path.join(sample, "dem.tif")]},
                       str(tmp_path / "o.tif"), RunOptions())
    assert "2015-07-12" in report.dates["s2"]
    line = next(m for m in report.messages if "differs from its tag" in m)
    assert line.startswith("warning: s2:") and "(2015-07-11)" in line
