"""What made a map is written into it (a new-user trial: the output carried no model or dates,
and an int8 variant ran without a word): MAESTRO_* metadata items in the GeoTIFF, and a log
line for a quantised model. Real Slovenia GeoTIFFs, the tiny models of our training."""
from __future__ import annotations

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
