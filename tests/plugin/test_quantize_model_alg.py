"""maestro:quantize_model through processing.run in real headless QGIS: the bundled model on
the bundled Slovenia sample (real GeoTIFFs), then the variant through maestro:segment."""
from __future__ import annotations

import glob
import os

import pytest

from tests.conftest import ROOT
from tests.plugin.conftest import read_raster

pytestmark = pytest.mark.usefixtures("maestro")
SAMPLE = os.path.join(ROOT, "resources", "sample")


def _run(alg, params):
    import processing

    return processing.run(f"maestro:{alg}", params)


def test_quantize_model_writes_a_checked_variant_that_segments(tmp_path):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("maestro:quantize_model")
    assert alg is not None and "VNNI" in alg.shortHelpString()
    for param in alg.parameterDefinitions():
        assert param.help(), param.name()
    s2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
    out = str(tmp_path / "bundled.int8.onnx")
    result = _run("quantize_model", {"S2": s2, "DEM": [os.path.join(SAMPLE, "dem.tif")],
                                     "METHOD": "dynamic", "TILES": 16, "OUTPUT": out})
    assert result["OUTPUT"] == out and os.path.exists(out)
    assert result["METHOD_USED"] == "dynamic" and result["AGREEMENT"] >= 99.0

    from engine.quantize import read_quantisation

    assert read_quantisation(out)["agreement"]["value"] >= 99.0
    maps = {}
    for name, model in (("f32", ""), ("int8", out)):
        path = str(tmp_path / f"{name}.tif")
        _run("segment", {"MODEL": model, "S2": s2, "DEM": [os.path.join(SAMPLE, "dem.tif")],
                         "OUTPUT": path, "DEVICE": "cpu"})
        maps[name] = read_raster(path)[0][0]
    valid = maps["f32"] != 255
    assert (maps["int8"][valid] == maps["f32"][valid]).mean() >= 0.99


def test_quantize_model_refuses_an_unreachable_threshold(tmp_path):
    from qgis.core import QgsProcessingException

    s2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
    out = tmp_path / "no.onnx"
    with pytest.raises(QgsProcessingException, match="no int8 variant"):
        _run("quantize_model", {"S2": s2, "DEM": [os.path.join(SAMPLE, "dem.tif")],
                                "METHOD": "static", "MIN_AGREEMENT": 100.0,
                                "OUTPUT": str(out)})
    assert not out.exists()
