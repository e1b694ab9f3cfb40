"""FLOAT16 and BATCHES_IN_FLIGHT (advanced parameters of the inference algorithms) and their
dock fields, in real headless QGIS with the tiny models exported by our training code and
the real Slovenia GeoTIFFs (tests/plugin/conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.plugin.conftest import read_raster

pytestmark = pytest.mark.usefixtures("maestro")

INFERENCE = ("segment", "classify", "embed", "similarity", "change")


def _alg(name):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().createAlgorithmById(f"maestro:{name}")


def test_parameters_are_advanced_with_help_and_defaults():
    from qgis.core import Qgis

    for name in INFERENCE:
        alg = _alg(name)
        float16 = alg.parameterDefinition("FLOAT16")
        in_flight = alg.parameterDefinition("BATCHES_IN_FLIGHT")
        assert float16 is not None and in_flight is not None, name
        for param in (float16, in_flight):
            assert param.flags() & Qgis.ProcessingParameterFlag.Advanced, (name, param.name())
        assert float16.type() == "boolean" and float16.defaultValue() is False
        assert float16.description() == "Use float16 on an NVIDIA GPU (ignored on CPU)"
        assert "NVIDIA GPU" in float16.help() and "Ignored on CPU" in float16.help()
        assert in_flight.dataType() == Qgis.ProcessingNumberParameterType.Integer
        assert (in_flight.defaultValue(), in_flight.minimum()) == (0, 0)
        assert "0 = auto" in in_flight.help() and "min(cores, 4) on CPU, 1 on CUDA" in in_flight.help()
        text = alg.shortHelpString()
        assert "<b>FLOAT16</b>" in text and "<b>BATCHES_IN_FLIGHT</b>" in text, name
    # the batch runs one block per Dask worker: float16 only
    batch = _alg("batch_segment")
    assert batch.parameterDefinition("FLOAT16") is not None
    assert batch.parameterDefinition("BATCHES_IN_FLIGHT") is None
    assert "<b>FLOAT16</b>" in batch.shortHelpString()
    assert "BATCHES_IN_FLIGHT" not in batch.shortHelpString()
    # train_classes' embeddings run (engine.classes.train) takes neither
    train = _alg("train_classes")
    assert train.parameterDefinition("FLOAT16") is None
    assert train.parameterDefinition("BATCHES_IN_FLIGHT") is None


def test_run_options_get_them():
    from qgis.core import QgsProcessingContext

    alg, context = _alg("segment"), QgsProcessingContext()
    default = alg.run_options({}, context)
    assert (default.batches_in_flight, default.float16) == (None, None)   # auto, environment
    asked = alg.run_options({"BATCHES_IN_FLIGHT": 3, "FLOAT16": True}, context)
    assert (asked.batches_in_flight, asked.float16) == (3, True)
    auto = alg.run_options({"BATCHES_IN_FLIGHT": 0, "FLOAT16": False}, context)
    assert (auto.batches_in_flight, auto.float16) == (None, None)


def test_segment_with_both_gives_the_same_map(tiny_models, rasters, tmp_path):
    """processing.run with FLOAT16 (ignored on this CPU) and 2 batches in flight succeeds and
    writes the map of a default run."""
    import processing
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos = []

        def pushInfo(self, info):
            self.infos.append(info)

    base = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2], "DEM": [rasters.dem],
            "DEVICE": "cpu", "BATCH_SIZE": 2}
    plain = processing.run("maestro:segment", {**base, "OUTPUT": str(tmp_path / "plain.tif"),
                                               "BATCHES_IN_FLIGHT": 1})
    told = Recorder()
    fast = processing.run("maestro:segment", {**base, "OUTPUT": str(tmp_path / "fast.tif"),
                                              "FLOAT16": True, "BATCHES_IN_FLIGHT": 2},
                          feedback=told)
    assert fast["PROVIDER"] == "CPUExecutionProvider"
    log = "\n".join(told.infos)
    assert "2 batch(es) in flight" in log and "float16 is used on CUDA only" in log
    a, _ = read_raster(plain["OUTPUT"])
    b, _ = read_raster(fast["OUTPUT"])
    assert set(np.unique(a)) <= {0, 1, 2, 255} and (a != 255).any()
    np.testing.assert_array_equal(a, b)


def test_batches_in_flight_below_zero_is_refused(tiny_models, rasters, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    out = tmp_path / "never.tif"
    with pytest.raises(QgsProcessingException, match="BATCHES_IN_FLIGHT"):
        processing.run("maestro:segment", {"MODEL": tiny_models["segmentation"],
                                           "S2": rasters.s2[:2], "DEM": [rasters.dem],
                                           "BATCHES_IN_FLIGHT": -1, "OUTPUT": str(out)})
    assert not out.exists()


def test_batch_segment_passes_float16_to_the_engine_batch_command(tiny_models, rasters,
                                                                  tmp_path):
    """FLOAT16 becomes ``--float16`` of ``python -m engine batch``, which parses it into the
    block tasks' RunOptions; without it the workers' environment decides (None)."""
    from qgis.core import QgsProcessingContext

    from engine.cli import build_parser
    from engine.contract import read_model_metadata

    alg, context = _alg("batch_segment"), QgsProcessingContext()
    model = tiny_models["segmentation"]
    meta = read_model_metadata(model)
    params = {"MODEL": model, "S2": rasters.s2[:2], "DEM": [rasters.dem],
              "OUTPUT_FOLDER": str(tmp_path / "job"), "BLOCK_SIZE": 64, "RETRIES": 1}
    with_it = alg.batch_command({**params, "FLOAT16": True}, context, model, meta)
    without = alg.batch_command(params, context, model, meta)
    assert "--float16" in with_it and "--float16" not in without
    assert "--batches-in-flight" not in with_it
    assert build_parser().parse_args(with_it).float16 is True
    assert build_parser().parse_args(without).float16 is None


def test_dock_fields_reach_the_run_options_and_processing_parameters(
        qgis_iface, tiny_models, rasters, tmp_path):
    """The dock's Advanced part has both; a run takes them into its RunOptions (and
    succeeds); the Processing parameters it hands to other algorithms carry them."""
    import time

    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import Qt

    from maestro_plugin.dock import MaestroDock

    dock = MaestroDock(qgis_iface, qgis_iface.mainWindow())
    qgis_iface.mainWindow().addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    try:
        assert dock.in_flight_spin.value() == 0 and dock.in_flight_spin.text() == "auto"
        assert not dock.float16_check.isChecked()
        dock.set_model(tiny_models["segmentation"])
        layers = [QgsRasterLayer(p, f"s2_{i}", "gdal") for i, p in enumerate(rasters.s2[:2])]
        dem = QgsRasterLayer(rasters.dem, "dem", "gdal")
        for layer in (*layers, dem):
            QgsProject.instance().addMapLayer(layer)
        assert dock.modality_inputs["S2"].add_layers(layers) == []
        assert dock.modality_inputs["DEM"].add_layer(dem)
        dock.device_combo.setCurrentText("cpu")
        dock.float16_check.setChecked(True)
        dock.in_flight_spin.setValue(2)
        params = dock.processing_parameters()
        assert (params["FLOAT16"], params["BATCHES_IN_FLIGHT"]) == (True, 2)
        out = tmp_path / "dock.tif"
        dock.output_widget.setFilePath(str(out))
        results = []
        dock.run_finished.connect(lambda ok, payload: results.append((ok, payload)))
        dock.run_button.click()
        assert dock.task is not None
        assert (dock.task.options.batches_in_flight, dock.task.options.float16) == (2, True)
        deadline = time.monotonic() + 120
        while not results and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.002)
        assert results and results[0][0], results
        assert out.exists()
        dock.in_flight_spin.setValue(0)
        dock.float16_check.setChecked(False)
        params = dock.processing_parameters()
        assert (params["FLOAT16"], params["BATCHES_IN_FLIGHT"]) == (False, 0)
    finally:
        layers = dem = None
        QgsProject.instance().removeAllMapLayers()
        qgis_iface.mainWindow().removeDockWidget(dock)
        dock.deleteLater()
