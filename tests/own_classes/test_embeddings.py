"""Encoder features on demand (RunOptions(output="embeddings"), maestro:embed with any model
that has them), maestro:similarity and maestro:change, on real GeoTIFFs (the Slovenia S2
stack on EPSG:32633 + a DEM on EPSG:3035, tests/plugin/conftest.py) and tiny models exported
by our training code (contract version 2: every model has an 'embeddings' output)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import run_qgis_process
from tests.plugin.conftest import NODATA_BLOCK, read_raster


def _inputs(rasters, s2=None):
    return {"s2": list(s2 or rasters.s2_hole), "dem": [rasters.dem]}


def test_segmentation_model_gives_its_encoder_features(tiny_models, rasters, tmp_path):
    from engine.api import RunOptions, run_model
    from engine.contract import read_model_metadata

    meta = read_model_metadata(tiny_models["segmentation"])
    assert meta.schema_version == 2 and meta.embedding_dim
    out = tmp_path / "emb.tif"
    report = run_model(tiny_models["segmentation"], _inputs(rasters), str(out),
                       RunOptions(output="embeddings", threads=1))
    emb, profile = read_raster(out)
    p = meta.reference.patch_px
    assert emb.shape == (meta.embedding_dim, -(-101 // p), 100 // p)
    assert emb.dtype == np.float32 and profile["transform"].a == pytest.approx(10.0 * p)
    # the nodata block (rows 20-51, cols 30-61 in every date) is NaN on the token grid
    r, c = NODATA_BLOCK
    inner = emb[:, r.start // p + 1:r.stop // p - 1, c.start // p + 1:c.stop // p - 1]
    assert np.isnan(inner).all() and np.isfinite(emb[:, 0, 0]).all()
    assert report.task == "segmentation"
    with __import__("rasterio").open(out) as ds:           # a COG: tiled with overviews
        assert ds.profile.get("tiled") and ds.descriptions[0] == "embedding_0"


def test_classification_and_v1_embedding_models_give_features(tiny_models, rasters, tmp_path):
    import dataclasses

    from engine.api import RunOptions, run_model
    from training.export import export_onnx
    from tests.tiny_model import build_tiny

    net = build_tiny("embedding")
    v1 = str(tmp_path / "tiny-emb-v1.onnx")
    export_onnx(net, dataclasses.replace(net.meta, schema_version=1), v1)
    for model in (tiny_models["classification"], v1):
        out = tmp_path / f"{os.path.basename(model)}.tif"
        run_model(model, _inputs(rasters), str(out), RunOptions(output="embeddings", threads=1))
        emb, _ = read_raster(out)
        assert emb.shape == (16, 26, 25) and np.isfinite(emb[:, 0, 0]).all()


def test_embedding_model_output_option_is_the_task_output(tiny_models, rasters, tmp_path):
    from engine.api import RunOptions, run_model

    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    run_model(tiny_models["embedding"], _inputs(rasters), str(a), RunOptions(threads=1))
    run_model(tiny_models["embedding"], _inputs(rasters), str(b),
              RunOptions(output="embeddings", threads=1))
    np.testing.assert_array_equal(read_raster(a)[0], read_raster(b)[0])


def test_model_without_embeddings_is_refused_before_writing(v1_segmentation_model, rasters,
                                                            tmp_path):
    from engine.api import RunOptions, run_model
    from engine.errors import InputError

    with pytest.raises(InputError, match="no 'embeddings' output.*contract version 1"):
        run_model(v1_segmentation_model, _inputs(rasters), str(tmp_path / "x.tif"),
                  RunOptions(output="embeddings"))
    with pytest.raises(InputError, match="output 'probabilities' is not one"):
        run_model(v1_segmentation_model, _inputs(rasters), str(tmp_path / "x.tif"),
                  RunOptions(output="probabilities"))
    assert not os.listdir(tmp_path)


@pytest.mark.usefixtures("maestro")
def test_embed_algorithm_takes_a_segmentation_model(tiny_models, rasters, tmp_path):
    import processing

    out = tmp_path / "emb.tif"
    result = processing.run("maestro:embed", {"MODEL": tiny_models["segmentation"],
                                              "S2": rasters.s2_hole, "DEM": [rasters.dem],
                                              "OUTPUT": str(out), "DEVICE": "cpu"})
    assert result["OUTPUT"] == str(out)
    emb, _ = read_raster(out)
    assert emb.shape[0] == 16 and np.isfinite(emb).any()


def _square(x0, y0, size):
    return (f"POLYGON (({x0} {y0}, {x0 + size} {y0}, {x0 + size} {y0 - size}, "
            f"{x0} {y0 - size}, {x0} {y0}))")


def _examples(path, wkts):
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = ds.CreateLayer("ex", srs, ogr.wkbUnknown)
    for wkt in wkts:
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(f)
    ds = layer = None
    return str(path)


@pytest.mark.usefixtures("maestro")
def test_similarity_is_the_cosine_to_the_examples_mean(tiny_models, rasters, tmp_path):
    """A single example point: its own token has similarity 1 (the maximum); every token's
    value is the cosine of (token - raster mean) and (example - raster mean). The same map
    from an embeddings raster made earlier by maestro:embed, without a model run."""
    import processing
    import rasterio

    with rasterio.open(rasters.s2[0]) as ds:
        x0, y0 = ds.transform.c, ds.transform.f
    point = _examples(tmp_path / "pt.gpkg", [f"POINT ({x0 + 125} {y0 - 705})"])
    emb = tmp_path / "emb.tif"
    processing.run("maestro:embed", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3],
                                     "DEM": [rasters.dem], "OUTPUT": str(emb)})
    out = tmp_path / "sim.tif"
    result = processing.run("maestro:similarity", {
        "MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3], "DEM": [rasters.dem],
        "EXAMPLES": point, "OUTPUT": str(out)})
    sim, profile = read_raster(out)
    e, _ = read_raster(emb)
    assert result["EXAMPLE_TOKENS"] == 1 and sim.shape == (1, *e.shape[1:])
    p = int(round(profile["transform"].a / 10.0))
    r, c = 705 // (10 * p), 125 // (10 * p)
    assert sim[0, r, c] == pytest.approx(1.0, abs=1e-5)
    assert np.nanmax(sim) == pytest.approx(1.0, abs=1e-5)
    ok = np.isfinite(e).all(axis=0)
    centred = e - e[:, ok].mean(axis=1)[:, None, None]
    q = centred[:, r, c]
    want = (centred * q[:, None, None]).sum(0) / (np.linalg.norm(centred, axis=0)
                                                  * np.linalg.norm(q))
    np.testing.assert_allclose(sim[0][ok], want[ok], atol=1e-4)
    assert np.isnan(sim[0][~ok]).all()
    # AREA (the inference algorithms' area of interest) limits the map
    part = tmp_path / "part.tif"
    processing.run("maestro:similarity", {
        "MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3], "DEM": [rasters.dem],
        "EXAMPLES": point, "OUTPUT": str(part),
        "AREA": f"{x0},{x0 + 480},{y0 - 800},{y0 - 480} [EPSG:32633]"})
    assert read_raster(part)[0].shape[1:] == (8, 12)
    out2 = tmp_path / "sim2.tif"
    square = _examples(tmp_path / "sq.gpkg", [_square(x0 + 100, y0 - 700, 120)])
    processing.run("maestro:similarity", {"EMBEDDINGS": str(emb), "EXAMPLES": square,
                                          "OUTPUT": str(out2), "CENTER": False})
    raw, _ = read_raster(out2)
    assert np.isfinite(raw[0][ok]).all() and raw[0][ok].max() <= 1 + 1e-5


@pytest.fixture(scope="module")
def changed_stack(rasters, tmp_path_factory):
    """Period 2: the same 3 S2 dates with rows/cols 40-71 replaced by rows/cols 0-31
    (a place that now looks like another)."""
    import rasterio

    folder = tmp_path_factory.mktemp("period2")
    out = []
    for path in rasters.s2[:3]:
        with rasterio.open(path) as src:
            data, profile = src.read(), src.profile
        data[:, 40:72, 40:72] = data[:, 0:32, 0:32][:, ::-1]
        dst = folder / os.path.basename(path)
        with rasterio.open(dst, "w", **profile) as d:
            d.write(data)
        out.append(str(dst))
    return out


@pytest.mark.usefixtures("maestro")
def test_change_is_larger_where_the_place_changed(tiny_models, rasters, changed_stack, tmp_path):
    import processing

    out, mask = tmp_path / "dist.tif", tmp_path / "mask.tif"
    result = processing.run("maestro:change", {
        "MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3], "DEM": [rasters.dem],
        "S2_2": changed_stack, "OUTPUT": str(out), "CHANGE_MASK": str(mask)})
    dist, profile = read_raster(out)
    p = int(round(profile["transform"].a / 10.0))
    inside = dist[0][44 // p:68 // p, 44 // p:68 // p]
    far = dist[0][:, 90 // p:]                      # 18+ px from the changed square
    assert np.nanmean(inside) > 3 * np.nanmean(far)
    m, _ = read_raster(mask)
    assert 0 < result["THRESHOLD_USED"] < 2 and 0 < result["CHANGED_FRACTION"] < 0.6
    flagged_inside = (m[0][44 // p:68 // p, 44 // p:68 // p] == 1).mean()
    flagged_far = (m[0][:, 90 // p:] == 1).mean()
    assert flagged_inside > 0.4 and flagged_inside > 3 * flagged_far, (flagged_inside, flagged_far)
    assert set(np.unique(m)) <= {0, 1, 255}


def test_embed_similarity_and_change_through_qgis_process(qgis_env, tiny_models, rasters,
                                                    changed_stack, tmp_path):
    out = tmp_path / "dist.tif"
    run = run_qgis_process(qgis_env, "--json", "run", "maestro:change", "--",
                           f"MODEL={tiny_models['segmentation']}",
                           *[f"S2={p}" for p in rasters.s2[:3]], f"DEM={rasters.dem}",
                           *[f"S2_2={p}" for p in changed_stack], f"OUTPUT={out}",
                           "THRESHOLD=0.05", f"CHANGE_MASK={tmp_path / 'm.tif'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["THRESHOLD_USED"] == pytest.approx(0.05) and out.exists()
    emb = tmp_path / "emb.tif"
    run = run_qgis_process(qgis_env, "run", "maestro:embed", "--",
                           f"MODEL={tiny_models['segmentation']}", f"S2={rasters.s2[0]}",
                           f"DEM={rasters.dem}", f"OUTPUT={emb}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_raster(emb)[0].shape[0] == 16
    import rasterio

    with rasterio.open(rasters.s2[0]) as ds:
        x0, y0 = ds.transform.c, ds.transform.f
    point = _examples(tmp_path / "pt.gpkg", [f"POINT ({x0 + 125} {y0 - 705})"])
    sim = tmp_path / "sim.tif"
    run = run_qgis_process(qgis_env, "--json", "run", "maestro:similarity", "--",
                           f"EMBEDDINGS={emb}", f"EXAMPLES={point}", f"OUTPUT={sim}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout[run.stdout.index("{"):])["results"]["EXAMPLE_TOKENS"] == 1
    assert np.nanmax(read_raster(sim)[0]) == pytest.approx(1.0, abs=1e-5)
    run = run_qgis_process(qgis_env, "run", "maestro:change", "--",
                           f"MODEL={tiny_models['segmentation']}", f"S2={rasters.s2[0]}",
                           f"DEM={rasters.dem}", f"OUTPUT={tmp_path / 'x.tif'}")
    assert run.returncode == 1 and "Period 2 has no input" in run.stdout + run.stderr


def test_otsu_separability_tells_one_group_from_two():
    """A single normal distribution of distances gives eta = 2/pi (Otsu 1979): the change tool
    warns below MIN_SEPARABILITY instead of presenting an arbitrary split as change."""
    from engine.classes.similarity import MIN_SEPARABILITY, otsu

    rng = np.random.default_rng(0)
    edges = np.linspace(0.0, 2.0, 257)
    one = np.histogram(np.clip(rng.normal(0.3, 0.05, 100_000), 0, 2), bins=edges)[0]
    two = np.histogram(np.clip(np.r_[rng.normal(0.2, 0.04, 80_000),
                                     rng.normal(0.9, 0.08, 20_000)], 0, 2), bins=edges)[0]
    t1, eta1 = otsu(one, edges)
    t2, eta2 = otsu(two, edges)
    assert abs(eta1 - 2 / np.pi) < 0.01 and eta1 < MIN_SEPARABILITY
    assert eta2 > 0.9 and 0.3 < t2 < 0.8
