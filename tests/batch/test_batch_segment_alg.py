"""maestro:batch_segment in real headless QGIS (processing.run): it drives
``python -m engine batch`` with a LocalCluster of 2 worker processes over the real Slovenia
patch, reports progress through the feedback, is cancelled, and resumes."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import load_plugin


@pytest.fixture(scope="module")
def plugin(qgis_app, qgis_processing):
    """The plugin loaded as QGIS loads it (classFactory + initProcessing), unless another
    test module already did."""
    from qgis.core import QgsApplication

    if QgsApplication.processingRegistry().providerById("maestro") is not None:
        yield None
        return
    loaded = load_plugin()
    yield loaded
    loaded.unload()


def _feedback(cancel_after_blocks: int | None = None):
    """A feedback recording infos and progress; cancels once ``cancel_after_blocks`` blocks
    are reported done (as a user pressing Cancel)."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos, self.percents = [], []

        def pushInfo(self, info):
            self.infos.append(info)
            done = info.split("/")[0]
            if cancel_after_blocks and done.isdigit() and int(done) >= cancel_after_blocks:
                self.cancel()

        def setProgress(self, progress):
            self.percents.append(progress)
            super().setProgress(progress)

    return Recorder()


def test_batch_segment_cancel_resume_and_mosaic(plugin, tiny_models, slovenia_inputs,
                                                   reference_run, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsApplication, QgsProcessingException

    alg = QgsApplication.processingRegistry().algorithmById("maestro:batch_segment")
    assert alg is not None and "resumable" in alg.shortHelpString()
    params = {"MODEL": tiny_models["segmentation"], "S2": slovenia_inputs["s2"],
              "DEM": slovenia_inputs["dem"], "BLOCK_SIZE": 48, "WORKERS": 2,
              "MERGED_COG": True, "OUTPUT_FOLDER": str(tmp_path)}
    # Cancel after 2 blocks: the child job is interrupted, what finished stays recorded.
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("maestro:batch_segment", params, feedback=_feedback(cancel_after_blocks=2))
    with open(tmp_path / "manifest.json") as f:
        done_before = sum(r["status"] == "done" for r in json.load(f)["blocks"].values())
    assert 2 <= done_before < 9
    assert not (tmp_path / "mosaic.vrt").exists()

    feedback = _feedback()
    result = processing.run("maestro:batch_segment", params, feedback=feedback)
    assert result["BLOCKS_TOTAL"] == 9 and result["BLOCKS_SKIPPED"] == done_before
    assert result["BLOCKS_RUN"] == 9 - done_before
    assert result["OUTPUT"] == str(tmp_path / "mosaic.vrt")
    for path in (result["OUTPUT"], result["MERGED"]):
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), reference_run[0])
    assert feedback.percents[-1] == 100.0
    assert any("9/9 blocks done" in info for info in feedback.infos)
    assert result["PROVIDER"] == "CPUExecutionProvider"

    # The resumed job's dates: those of all 9 blocks, the ones of the cancelled run included.
    assert json.loads(result["DATES_USED"])["s2"] == sorted(json.loads(result["DATES_USED"])["s2"])
    assert len(json.loads(result["DATES_USED"])["s2"]) == 5
    again_feedback = _feedback()
    again = processing.run("maestro:batch_segment", params, feedback=again_feedback)
    assert (again["BLOCKS_RUN"], again["BLOCKS_SKIPPED"]) == (0, 9)
    assert again["DATES_USED"] == result["DATES_USED"]       # nothing computed: was "{}"
    # --merged-cog left no temporary side file for this run to call a leftover.
    assert not [i for i in again_feedback.infos if "interrupted run" in i], again_feedback.infos



def test_area_and_blocks_parameters_become_runner_arguments(plugin, tmp_path):
    """AREA (any CRS) -> --area-bounds + --area-crs; BLOCKS -> one --block-bounds per feature."""
    from qgis.core import (QgsApplication, QgsFeature, QgsGeometry, QgsProcessingContext,
                           QgsProcessingException, QgsRectangle, QgsVectorLayer)

    alg = QgsApplication.processingRegistry().createAlgorithmById("maestro:batch_segment")
    context = QgsProcessingContext()
    args = alg.area_arguments({"AREA": "14.553,14.560,45.867,45.873 [EPSG:4326]"}, context)
    assert args[:5] == ["--area-bounds", "14.553", "45.867", "14.56", "45.873"]
    assert args[5:] == ["--area-crs", "EPSG:4326"]

    layer = QgsVectorLayer("Polygon?crs=EPSG:32633", "blocks", "memory")
    feats = []
    for x in (465181.0, 465501.0):
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromRect(QgsRectangle(x, 5079934.0, x + 320, 5080254.0)))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    args = alg.area_arguments({"BLOCKS": layer}, context)
    assert args.count("--block-bounds") == 2 and args[1:5] == ["465181.0", "5079934.0",
                                                               "465501.0", "5080254.0"]
    assert args[-2:] == ["--area-crs", "EPSG:32633"]
    with pytest.raises(QgsProcessingException, match="either AREA or BLOCKS"):
        alg.area_arguments({"BLOCKS": layer, "AREA": "0,1,0,1 [EPSG:32633]"}, context)


def test_batch_segment_refuses_missing_modality(plugin, tiny_models, slovenia_inputs, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="DEM"):
        processing.run("maestro:batch_segment",
                       {"MODEL": tiny_models["segmentation"], "S2": slovenia_inputs["s2"],
                        "OUTPUT_FOLDER": str(tmp_path)})
    assert not os.path.exists(tmp_path / "manifest.json")


def test_batch_segment_output_folder_that_is_a_file_is_one_line(plugin, tiny_models,
                                                                  slovenia_inputs, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    a_file = tmp_path / "out"
    a_file.write_text("keep me")
    with pytest.raises(QgsProcessingException, match="is an existing file, not a folder") as err:
        processing.run("maestro:batch_segment",
                       {"MODEL": tiny_models["segmentation"], "S2": slovenia_inputs["s2"],
                        "DEM": slovenia_inputs["dem"], "OUTPUT_FOLDER": str(a_file)})
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    assert a_file.read_text() == "keep me"
