"""maestro:batch_segment in real headless QGIS (processing.run): it drives
``python -m engine batch`` with a LocalCluster of 2 worker processes over the real Slovenia
patch, reports progress through the feedback, and resumes."""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def plugin(qgis_app, qgis_processing):
    """The plugin loaded as QGIS loads it (classFactory + initProcessing)."""
    spec = importlib.util.spec_from_file_location("maestro", os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules["maestro"] = module
    spec.loader.exec_module(module)
    loaded = module.classFactory(None)
    loaded.initProcessing()
    yield loaded
    loaded.unload()


def _feedback():
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos, self.percents = [], []

        def pushInfo(self, info):  # noqa: N802 (QGIS API name)
            self.infos.append(info)

        def setProgress(self, progress):  # noqa: N802 (QGIS API name)
            self.percents.append(progress)
            super().setProgress(progress)

    return Recorder()


def test_batch_segment_maps_the_patch_then_resumes(plugin, tiny_models, slovenia_inputs,
                                                   reference_run, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsApplication, QgsProcessingException

    alg = QgsApplication.processingRegistry().algorithmById("maestro:batch_segment")
    assert alg is not None and "resumable" in alg.shortHelpString()
    params = {"MODEL": tiny_models["segmentation"], "S2": slovenia_inputs["s2"],
              "DEM": slovenia_inputs["dem"], "BLOCK_SIZE": 48, "WORKERS": 2,
              "MERGED_COG": True, "OUTPUT_FOLDER": str(tmp_path)}
    feedback = _feedback()
    result = processing.run("maestro:batch_segment", params, feedback=feedback)
    assert (result["BLOCKS_TOTAL"], result["BLOCKS_RUN"], result["BLOCKS_SKIPPED"]) == (9, 9, 0)
    assert result["OUTPUT"] == str(tmp_path / "mosaic.vrt")
    for path in (result["OUTPUT"], result["MERGED"]):
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), reference_run[0])
    assert feedback.percents[-1] == 100.0
    assert any("9/9 blocks done" in info for info in feedback.infos)
    assert result["PROVIDER"] == "CPUExecutionProvider"

    again = processing.run("maestro:batch_segment", params, feedback=_feedback())
    assert (again["BLOCKS_RUN"], again["BLOCKS_SKIPPED"]) == (0, 9)

    # Another area in the same folder is another job: refused with the runner's message.
    with pytest.raises(QgsProcessingException, match="holds a batch job with other parameters"):
        processing.run("maestro:batch_segment",
                       dict(params, AREA="14.553,14.560,45.867,45.873 [EPSG:4326]"),
                       feedback=_feedback())


def test_batch_segment_refuses_missing_modality(plugin, tiny_models, slovenia_inputs, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="DEM"):
        processing.run("maestro:batch_segment",
                       {"MODEL": tiny_models["segmentation"], "S2": slovenia_inputs["s2"],
                        "OUTPUT_FOLDER": str(tmp_path)})
    assert not os.path.exists(tmp_path / "manifest.json")
