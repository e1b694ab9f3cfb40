"""The algorithms and the graphical model through qgis_process (a separate QGIS process
that loads the plugin from the private profile), on real GeoTIFFs and tiny models."""
from __future__ import annotations

import json
import os

import numpy as np

from tests.conftest import ROOT, run_qgis_process
from tests.plugin.conftest import NODATA_BLOCK, S2_DATES, read_raster

GRAPHICAL_MODEL = os.path.join(ROOT, "resources", "models", "maestro_landcover_areas.model3")


def _json(run):
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout[run.stdout.index("{"):])


def test_segment_time_stack_by_repeated_parameter(qgis_env, tiny_models, rasters, tmp_path):
    out = tmp_path / "lc.tif"
    doc = _json(run_qgis_process(
        qgis_env, "--json", "run", "maestro:segment", "--",
        f"MODEL={tiny_models['segmentation']}", *[f"S2={p}" for p in rasters.s2_hole],
        f"DEM={rasters.dem}", f"OUTPUT={out}", "TILE_OVERLAP=25", "DEVICE=cpu"))
    results = doc["results"]
    assert json.loads(results["DATES_USED"])["s2"] == sorted(S2_DATES[:3])
    assert results["PROVIDER"] == "CPUExecutionProvider"
    lc, profile = read_raster(out)
    assert lc.shape == (1, 101, 100) and profile["crs"].to_epsg() == 32633
    assert (lc[0][NODATA_BLOCK] == 255).all()


def test_classify_and_embed(qgis_env, tiny_models, rasters, tmp_path):
    from engine.contract import read_model_metadata

    dim = read_model_metadata(tiny_models["embedding"]).embedding_dim
    for alg, task, bands in (("classify", "classification", 3), ("embed", "embedding", dim)):
        out = tmp_path / f"{alg}.tif"
        _json(run_qgis_process(qgis_env, "--json", "run", f"maestro:{alg}", "--",
                               f"MODEL={tiny_models[task]}", f"S2={rasters.s2[0]}",
                               f"S2={rasters.s2[1]}", f"DEM={rasters.dem}", f"OUTPUT={out}"))
        data, _ = read_raster(out)
        assert data.shape[0] == bands and np.isfinite(data).any()


def test_bad_input_fails_with_the_message(qgis_env, tiny_models, rasters, tmp_path):
    run = run_qgis_process(qgis_env, "run", "maestro:segment", "--",
                           f"MODEL={tiny_models['segmentation']}", f"S2={rasters.s2[0]}",
                           f"OUTPUT={tmp_path / 'x.tif'}")
    assert run.returncode == 1
    assert "needs the modality DEM" in run.stdout + run.stderr
    assert not os.listdir(tmp_path)


def test_graphical_model_segments_polygonises_and_computes_class_areas(qgis_env, tiny_models,
                                                                      rasters, tmp_path):
    from osgeo import ogr

    lc_path, areas_path = tmp_path / "lc.tif", tmp_path / "areas.gpkg"
    _json(run_qgis_process(
        qgis_env, "--json", "run", GRAPHICAL_MODEL, "--",
        f"MODEL={tiny_models['segmentation']}", *[f"S2={p}" for p in rasters.s2_hole],
        f"DEM={rasters.dem}", f"land_cover={lc_path}",
        f"class_areas={areas_path}"))
    lc, _ = read_raster(lc_path)
    ds = ogr.Open(str(areas_path))
    layer = ds.GetLayer(0)
    rows = {f.GetField("class_id"): (f.GetField("area_m2"), f.GetField("area_ha")) for f in layer}
    layer.ResetReading()
    names = {f.GetField("class_id"): f.GetField("class_name") for f in layer}
    assert names and all(name == ["forest", "grassland", "artificial"][cid]
                         for cid, name in names.items())
    ds = layer = None
    # polygonize skips nodata (255): one row per class present, areas = pixel counts x 100 m2
    # on the map, x 1/k^2 on the ground (UTM 33N at 14.5 E: k = 0.99961, +0.077 %)
    values, counts = np.unique(lc[0][lc[0] != 255], return_counts=True)
    assert sorted(rows) == sorted(int(v) for v in values)
    for value, count in zip(values, counts):
        m2, ha = rows[int(value)]
        assert 1.0 < m2 / (count * 100.0) < 1.001 and abs(ha - m2 / 10000) < 1e-3
