"""What made a map is written into it (a new-user trial: the output carried no model or dates,
and an int8 variant ran without a word): MAESTRO_* metadata items in the GeoTIFF, and a log
line for a quantised model. Real Slovenia GeoTIFFs, the tiny models of our training."""
from __future__ import annotations

import numpy as np
import rasterio

from engine.api import RunOptions, run_model
from engine.quantize import QuantizeOptions, quantize_model


def test_the_map_names_its_model_task_precision_and_dates(tiny_models, scene, tmp_path):
    inputs = scene(rows=48, cols=48)
    conf = str(tmp_path / "conf.tif")
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(confidence_path=conf))
    for path in (report.output_path, conf):
        with rasterio.open(path) as src:
            tags = src.tags()
        assert tags["MAESTRO_TASK"] == "segmentation"
        assert tags["MAESTRO_MODEL_FILE"] == tiny_models["segmentation"].split("/")[-1]
        assert tags["MAESTRO_PRECISION"] == "float32"
        assert tags["MAESTRO_DATES_S2"].split(",") == report.dates["s2"]
        assert tags["MAESTRO_DATES_DEM"].split(",") == report.dates["dem"]


def test_an_int8_variant_says_so_in_the_log_and_the_map(tiny_models, scene, tmp_path):
    inputs = scene(rows=64, cols=64)
    variant = str(tmp_path / "tiny.int8.onnx")
    quantize_model(tiny_models["segmentation"], inputs, variant,
                   QuantizeOptions(method="dynamic", min_agreement_pct=0.0))
    report = run_model(variant, inputs, str(tmp_path / "o.tif"), RunOptions())
    line = next(m for m in report.messages if "int8 (dynamic) variant of" in m)
    assert "agreement with float32" in line
    with rasterio.open(report.output_path) as src:
        assert src.tags()["MAESTRO_PRECISION"] == "int8 (dynamic)"


def test_bounds_in_another_crs(tiny_models, scene, tmp_path):
    """A new-user trial gave lon/lat bounds and got "do not overlap" without the CRS named.
    bounds_crs transforms them (their envelope in the reference CRS); the map there equals
    the whole run's pixels."""
    import pytest
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    from engine.errors import InputError

    inputs = scene(rows=96, cols=96)
    whole = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "w.tif"),
                      RunOptions(tile_overlap_pct=0))
    with rasterio.open(inputs["s2"][0]) as src:
        x0, y1 = src.transform.c, src.transform.f
        crs = src.crs
    utm = (x0 + 320, y1 - 640, x0 + 640, y1 - 320)
    lonlat = transform_bounds(crs, "EPSG:4326", *utm)
    part = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "p.tif"),
                     RunOptions(tile_overlap_pct=0, bounds=lonlat, bounds_crs="EPSG:4326"))
    with rasterio.open(part.output_path) as p, rasterio.open(whole.output_path) as w:
        win = from_bounds(*p.bounds, transform=w.transform).round_offsets().round_lengths()
        assert p.width >= 32 and p.height >= 32
        np.testing.assert_array_equal(p.read(1), w.read(1, window=win))
    with pytest.raises(InputError, match="in EPSG:32633; bounds in another CRS need their CRS"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "x.tif"),
                  RunOptions(bounds=lonlat))


def test_quantize_refuses_to_overwrite_its_model_before_any_work(tiny_models, scene, tmp_path):
    import os
    import shutil

    import pytest

    from engine.quantize import QuantisationError

    model = str(tmp_path / "m.onnx")
    shutil.copyfile(tiny_models["segmentation"], model)
    os.link(model, str(tmp_path / "hard.onnx"))
    for out in (model, str(tmp_path / "hard.onnx")):
        lines = []
        with pytest.raises(QuantisationError, match="would overwrite the float32 model"):
            quantize_model(model, scene(rows=32, cols=32), out, QuantizeOptions(), log=lines.append)
        assert lines == []                                    # refused before preparing tiles
