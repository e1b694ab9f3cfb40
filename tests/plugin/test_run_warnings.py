"""The engine's ``warning:`` lines reach the analyst (a new-user trial: in QGIS they were plain
log lines, and the dock showed only "ready"): Processing pushes them as warnings, the dock
shows the first in its message bar and writes all of them to the MAESTRO log panel. Real
QGIS (pytest-qgis), the bundled model on the bundled sample tagged as Level-2A."""
from __future__ import annotations

import glob
import os

from qgis.core import Qgis

from tests.conftest import ROOT
from tests.engine.test_product_level import _copy
from tests.plugin.test_dock import dock, project_layers, wait_for  # noqa: F401 (fixtures)

MODEL = glob.glob(os.path.join(ROOT, "resources", "models", "*.onnx"))[0]


def test_dock_shows_the_runs_warning(dock, qgis_iface, project_layers, tmp_path):
    from qgis.core import QgsApplication

    inputs = _copy(str(tmp_path), tags={"PROCESSING_LEVEL": "Level-2A"})
    logged = []
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, level: logged.append((message, tag, level)))
    dock.set_model(MODEL)
    assert dock.modality_inputs["S2"].add_layers([project_layers(p) for p in inputs["s2"]]) == []
    assert dock.modality_inputs["DEM"].add_layer(project_layers(inputs["dem"][0]))
    dock.output_widget.setFilePath(str(tmp_path / "map.tif"))
    dock.run_button.click()
    ok, layer_id, _ = wait_for(dock)
    assert ok, layer_id
    warnings = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
    assert any("added to the map, with a warning" in m and "Sentinel-2 L2A" in m
               for m in warnings), warnings
    assert any("Sentinel-2 L2A" in m and level == Qgis.MessageLevel.Warning
               for m, _, level in logged)


def test_processing_pushes_engine_warnings_as_warnings(tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    import processing

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings, self.infos = [], []

        def pushWarning(self, text):  # noqa: N802 (QgsProcessingFeedback API)
            self.warnings.append(text)

        def pushInfo(self, text):  # noqa: N802 (QgsProcessingFeedback API)
            self.infos.append(text)

    inputs = _copy(str(tmp_path), tags={"PRODUCT_TYPE": "S2MSI2A"})
    feedback = Feedback()
    processing.run("maestro:segment", {"MODEL": MODEL, "S2": inputs["s2"],
                                       "DEM": inputs["dem"],
                                       "OUTPUT": str(tmp_path / "seg.tif")},
                   context=QgsProcessingContext(), feedback=feedback)
    assert any("Sentinel-2 L2A" in w for w in feedback.warnings), feedback.warnings
    assert not any(w.startswith("warning:") for w in feedback.warnings)  # QGIS adds WARNING:
    assert not any(i.startswith("warning:") for i in feedback.infos)
