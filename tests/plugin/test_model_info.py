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


def test_processing_run_reports_metadata(provider, tiny_models, tmp_path):
    import processing

    out = tmp_path / "meta.json"
    result = processing.run("maestro:model_info",
                            {"MODEL": tiny_models["segmentation"], "OUTPUT": str(out)})
    assert "Task: segmentation" in result["REPORT"]
    assert "s2: 10 bands" in result["REPORT"] and "2: artificial #d73027" in result["REPORT"]
    assert json.loads(out.read_text())["reference_modality"] == "s2"


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
