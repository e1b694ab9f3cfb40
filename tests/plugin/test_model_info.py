"""maestro:model_info in real headless QGIS: through processing.run and qgis_process."""
import json

import pytest

from tests.conftest import run_qgis_process


@pytest.fixture(scope="module")
def provider(maestro):
    """The plugin loaded as QGIS does (tests/plugin/conftest.py)."""
    return maestro.provider


def test_provider_lists_model_info(provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("maestro:model_info")
    assert alg is not None
    assert "model contract" in alg.shortHelpString()
    assert "quantisation record" in alg.shortHelpString() and "VNNI" in alg.shortHelpString()


def test_processing_run_reports_metadata(provider, tiny_models, tmp_path):
    import processing

    out = tmp_path / "meta.json"
    result = processing.run("maestro:model_info",
                            {"MODEL": tiny_models["segmentation"], "OUTPUT": str(out)})
    assert "Task: segmentation" in result["REPORT"]
    assert "s2: 10 bands" in result["REPORT"] and "2: artificial #d73027" in result["REPORT"]
    assert json.loads(out.read_text())["reference_modality"] == "s2"


def test_float32_model_precision_line(provider, tiny_models):
    import processing

    result = processing.run("maestro:model_info", {"MODEL": tiny_models["segmentation"]})
    assert result["REPORT"].splitlines()[-1] == "Precision: float32 (not quantised)"
    assert result["QUANTISATION_JSON"] == ""


def test_int8_variant_shows_its_quantisation_record(provider, tiny_models, rasters, tmp_path):
    """A real dynamic int8 variant of the tiny model, calibrated and checked on the Slovenia
    rasters (as tests/perf/test_quantize.py makes them): the report gives the record that
    quantize wrote and what this CPU's int8 instructions mean for it."""
    import processing

    from engine.quantize import (QuantizeOptions, cpu_int8_support, int8_support_message,
                                 quantize_model, read_quantisation)

    variant = str(tmp_path / "tiny.int8.onnx")
    quantize_model(tiny_models["segmentation"], {"s2": rasters.s2[:3], "dem": [rasters.dem]},
                   variant, QuantizeOptions(method="dynamic", threads=1, tiles=16))
    record = read_quantisation(variant)
    result = processing.run("maestro:model_info", {"MODEL": variant})
    report = result["REPORT"]
    assert "Task: segmentation" in report
    assert "Precision: int8 (dynamic, QOperator (DynamicQuantizeMatMul))" in report
    agreement = record["agreement"]
    assert (f"Agreement with float32: {agreement['value']} (% of pixels with equal argmax) on "
            f"{agreement['check_tiles']} check tiles; threshold 99.0") in report
    assert f"Speed vs float32 at conversion: {record['speed_vs_float32_at_conversion']:g}x" in report
    assert "Source model: tiny-segmentation.onnx" in report
    assert "Quantised operators: MatMul, Gemm" in report
    assert "Calibration: none (activations quantised per batch at run time)" in report
    assert f"This CPU: {int8_support_message(cpu_int8_support())}" in report
    assert json.loads(result["QUANTISATION_JSON"]) == record


def test_processing_run_bad_file_is_a_processing_exception(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(QgsProcessingException, match="not a valid ONNX model"):
        processing.run("maestro:model_info", {"MODEL": str(bad)})


def test_qgis_process_lists_and_runs(qgis_env, tiny_models):
    listing = run_qgis_process(qgis_env, "list")
    assert listing.returncode == 0, listing.stderr
    for name in ("model_info", "segment", "classify", "embed"):
        assert f"maestro:{name}" in listing.stdout
    run = run_qgis_process(qgis_env, "--json", "run", "maestro:model_info", "--",
                           f"MODEL={tiny_models['classification']}")
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout[run.stdout.index("{"):])
    assert "Task: classification (multilabel)" in doc["results"]["REPORT"]


def test_qgis_process_bad_model_fails_with_message(qgis_env, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    run = run_qgis_process(qgis_env, "run", "maestro:model_info", "--", f"MODEL={bad}")
    assert run.returncode == 1
    assert "not a valid ONNX model" in run.stdout + run.stderr
