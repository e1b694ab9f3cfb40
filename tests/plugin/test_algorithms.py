"""maestro:segment, maestro:classify, maestro:embed through processing.run in real headless
QGIS, on real GeoTIFFs (Slovenia S2 time series on EPSG:32633 at 10 m + a DEM on EPSG:3035
at 20 m) with tiny models exported by our training code."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.plugin.conftest import NODATA_BLOCK, S2_DATES, read_raster

pytestmark = pytest.mark.usefixtures("maestro")


def _run(alg, params, feedback=None, context=None):
    import processing

    return processing.run(f"maestro:{alg}", params, feedback=feedback, context=context)


def test_algorithms_registered_with_help_icon_group_and_modality_parameters():
    from qgis.core import Qgis, QgsApplication

    registry = QgsApplication.processingRegistry()
    for name in ("segment", "classify", "embed", "model_info", "class_names"):
        alg = registry.algorithmById(f"maestro:{name}")
        assert alg is not None, name
        # directly under the provider "MAESTRO" (no "MAESTRO > MAESTRO")
        assert alg.group() == "" and not alg.icon().isNull()
        assert len(alg.shortHelpString()) > 200
        for param in alg.parameterDefinitions():
            assert param.help(), f"{name}.{param.name()} has no help"
    seg = registry.algorithmById("maestro:segment")
    names = [p.name() for p in seg.parameterDefinitions()]
    for key in ("MODEL", "AERIAL", "DEM", "S2", "S1_ASC", "S1_DESC", "S1", "SPOT", "DATES",
                "TILE_OVERLAP",
                "BATCH_SIZE", "DEVICE", "FLOAT16", "BATCHES_IN_FLIGHT", "OUTPUT", "CONFIDENCE"):
        assert key in names
    advanced = {p.name() for p in seg.parameterDefinitions()
                if p.flags() & Qgis.ProcessingParameterFlag.Advanced}
    assert advanced == {"TILE_OVERLAP", "BATCH_SIZE", "DEVICE", "FLOAT16", "BATCHES_IN_FLIGHT"}
    assert seg.parameterDefinition("S2").layerType() == Qgis.ProcessingSourceType.Raster


def test_segment_time_stack_two_crs_nodata_block_and_confidence(tiny_models, rasters, tmp_path):
    """S2 stack of 3 dates with a nodata block (EPSG:32633, 10 m) + DEM (EPSG:3035, 20 m)."""
    out, conf = str(tmp_path / "lc.tif"), str(tmp_path / "conf.tif")
    result = _run("segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2_hole,
                              "DEM": [rasters.dem], "OUTPUT": out, "CONFIDENCE": conf,
                              "TILE_OVERLAP": 50, "BATCH_SIZE": 3, "DEVICE": "cpu"})
    assert result["OUTPUT"] == out and result["CONFIDENCE"] == conf
    assert result["PROVIDER"] == "CPUExecutionProvider"
    assert json.loads(result["DATES_USED"])["s2"] == sorted(S2_DATES[:3])
    lc, profile = read_raster(out)
    assert profile["crs"].to_epsg() == 32633 and profile["transform"].a == 10.0
    assert lc.shape == (1, 101, 100) and lc.dtype == np.uint8 and profile["nodata"] == 255
    block = lc[0][NODATA_BLOCK]
    assert (block == 255).all(), "the nodata block must stay nodata"
    inside = np.ones(lc.shape[1:], bool)
    inside[NODATA_BLOCK] = False
    inside[:2, :] = inside[-2:, :] = inside[:, :2] = inside[:, -2:] = False  # DEM edge pixels
    assert (lc[0][inside] < 3).mean() > 0.95  # class ids of the 3 tiny classes elsewhere
    confidence, _ = read_raster(conf)
    valid = lc[0] != 255
    assert ((confidence[0][valid] >= 1 / 3 - 1e-6) & (confidence[0][valid] <= 1)).all()


def test_segment_refuses_write_time_dates_until_dates_gives_them(tiny_models, rasters,
                                                                 tmp_path):
    """Layers dated only by TIFFTAG_DATETIME (the file write time): the run stops naming the
    layer DATES leaves without a date; DATES giving both (by file name) runs."""
    from qgis.core import QgsProcessingException

    a, b = (os.path.basename(p) for p in rasters.s2_tagged[:2])
    params = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2_tagged[:2],
              "DEM": [rasters.dem], "OUTPUT": str(tmp_path / "lc.tif")}
    with pytest.raises(QgsProcessingException, match=rf"{b}' \(2015-07-31\).*TIFFTAG_DATETIME"):
        _run("segment", {**params, "DATES": f"S2:{a}=2016-01-02"})
    result = _run("segment", {**params, "DATES": f"S2:{a}=2016-01-02; {b}=2015-07-31"})
    assert json.loads(result["DATES_USED"])["s2"] == ["2015-07-31", "2016-01-02"]


def test_undated_stack_runs_with_dates_given_in_dates_parameter(tiny_models, rasters, tmp_path):
    a, b = rasters.s2_undated
    result = _run("segment", {"MODEL": tiny_models["segmentation"], "S2": [a, b],
                              "DEM": [rasters.dem], "OUTPUT": str(tmp_path / "lc.tif"),
                              "DATES": f"{a}=2020-05-01;\n{os.path.basename(b)}=2020-06-01"})
    assert json.loads(result["DATES_USED"])["s2"] == ["2020-05-01", "2020-06-01"]


def test_segment_results_are_styled_when_loaded(tiny_models, rasters, tmp_path):
    """Land cover: paletted with the model's class names and colours; confidence: 0-1 ramp."""
    import processing
    from qgis.core import (QgsPalettedRasterRenderer, QgsProject,
                           QgsSingleBandPseudoColorRenderer)

    out, conf = str(tmp_path / "styled.tif"), str(tmp_path / "styled-conf.tif")
    result = processing.runAndLoadResults(
        "maestro:segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2],
                            "DEM": [rasters.dem], "OUTPUT": out, "CONFIDENCE": conf})
    assert result["OUTPUT"] == out and result["CONFIDENCE"] == conf
    by_source = {lyr.source(): lyr for lyr in QgsProject.instance().mapLayers().values()}
    try:
        renderer = by_source[out].renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        classes = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
        assert classes == {0: ("forest", "#1b7837"), 1: ("grassland", "#a6dba0"),
                           2: ("artificial", "#d73027")}
        renderer = by_source[conf].renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0.0, 1.0)
    finally:
        renderer = None
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in by_source.values()])
        by_source = None


def test_classify_and_embed(tiny_models, rasters, tmp_path):
    cls = _run("classify", {"MODEL": tiny_models["classification"], "S2": rasters.s2,
                            "DEM": [rasters.dem], "OUTPUT": str(tmp_path / "cls.tif")})
    scores, profile = read_raster(cls["OUTPUT"])
    # multilabel tiny model: one float band per class, one pixel per 16 px tile (160 m)
    assert scores.shape[0] == 3 and profile["transform"].a == 160.0
    finite = scores[np.isfinite(scores)]
    assert finite.size and ((finite >= 0) & (finite <= 1)).all()
    emb = _run("embed", {"MODEL": tiny_models["embedding"], "S2": rasters.s2[:1],
                         "DEM": [rasters.dem], "OUTPUT": str(tmp_path / "emb.tif")})
    feats, profile = read_raster(emb["OUTPUT"])
    from engine.contract import read_model_metadata

    dim = read_model_metadata(tiny_models["embedding"]).embedding_dim
    assert feats.shape[0] == dim and feats.dtype == np.float32 and profile["transform"].a == 40.0


def test_cancel_leaves_no_output(tiny_models, rasters, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    seen = []

    def cancel_after_first(progress):
        seen.append(progress)
        if progress > 0:
            feedback.cancel()

    feedback.progressChanged.connect(cancel_after_first)
    out = tmp_path / "cancelled.tif"
    with pytest.raises(QgsProcessingException, match="cancel"):
        _run("segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2,
                         "DEM": [rasters.dem], "OUTPUT": str(out), "BATCH_SIZE": 1,
                         "CONFIDENCE": str(tmp_path / "cancelled-conf.tif")}, feedback=feedback)
    assert seen and not os.listdir(tmp_path), os.listdir(tmp_path)


# -------------------------------------------------------------------- bad inputs
def _bad(tiny_models, rasters, tmp_path, **params):
    base = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2], "DEM": [rasters.dem],
            "OUTPUT": str(tmp_path / "bad.tif")}
    base.update(params)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("case, match", [
    ("band_count", r"has 9 bands but .*10"),
    ("missing_modality", r"needs the modality DEM: set DEM: 1 layer, 1 band \(elevation\), 20 m"),
    ("unexpected_modality", r"S1_ASC was given but model 'tiny-segmentation' does not use it"),
    ("corrupt_onnx", r"not a valid ONNX model"),
    ("no_metadata", r"no 'maestro' entry|not exported by MAESTRO"),
    ("no_overlap", r"overlap|no valid pixel"),
    ("no_crs", r"has no CRS"),
    ("all_nodata", r"no valid pixel|nodata"),
    ("no_dates", r"no acquisition date"),
    ("unwritable_output", r"cannot write"),
    ("wrong_task", r"is a classification model; maestro:segment needs a segmentation model"),
    ("single_date_twice", r"DEM is a single-date modality"),
    ("bad_date_override", r"is not a date YYYY-MM-DD"),
    ("unmatched_date_override", r"matches no input layer"),
    ("not_geotiff", r"is not a GeoTIFF"),
    ("cuda_unavailable", r"device=cuda .*CUDAExecutionProvider"),
])
def test_bad_input_is_a_clear_processing_exception(case, match, tiny_models, rasters, tmp_path,
                                                  onnx_without_metadata):
    from qgis.core import QgsProcessingException

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(open(tiny_models["segmentation"], "rb").read()[:2000])
    afile = tmp_path / "a_file"
    afile.write_text("x")
    params = {
        "band_count": dict(S2=[rasters.s2_9bands]),
        "missing_modality": dict(DEM=None),
        "unexpected_modality": dict(S1_ASC=[rasters.s2[0]]),
        "corrupt_onnx": dict(MODEL=str(corrupt)),
        "no_metadata": dict(MODEL=onnx_without_metadata),
        "no_overlap": dict(DEM=[rasters.dem_far]),
        "no_crs": dict(S2=[rasters.s2_no_crs]),
        "all_nodata": dict(S2=[rasters.s2_empty]),
        "no_dates": dict(S2=rasters.s2_undated),
        "unwritable_output": dict(OUTPUT=str(afile / "out.tif")),
        "wrong_task": dict(MODEL=tiny_models["classification"]),
        "single_date_twice": dict(DEM=[rasters.dem, rasters.dem]),
        "bad_date_override": dict(DATES="S2_20150820.tif=20-05-2015"),
        "unmatched_date_override": dict(DATES="S2:nothing.tif=2015-05-20"),
        "not_geotiff": dict(OUTPUT=str(tmp_path / "out.png")),
        "cuda_unavailable": dict(DEVICE="cuda"),  # CPU-only onnxruntime here
    }[case]
    with pytest.raises(QgsProcessingException, match=match):
        _run("segment", _bad(tiny_models, rasters, tmp_path, **params))
    left = [f for f in os.listdir(tmp_path) if f not in ("corrupt.onnx", "a_file")]
    assert not left, f"output left behind: {left}"


def test_empty_model_means_the_bundled_default_model(tmp_path):
    """MODEL empty -> resources/models/maestro-tiny-slovenia-lulc.onnx: its report when the
    default model is bundled, else an error naming that file (never another model)."""
    import processing
    from qgis.core import QgsProcessingException

    from maestro_plugin.algorithms.base import DEFAULT_MODEL

    if os.path.isfile(DEFAULT_MODEL):
        report = processing.run("maestro:model_info", {"MODEL": ""})["REPORT"]
        assert "Task: segmentation" in report
    else:
        with pytest.raises(QgsProcessingException, match="maestro-tiny-slovenia-lulc.onnx"):
            _run("segment", {"MODEL": "", "OUTPUT": str(tmp_path / "x.tif")})
