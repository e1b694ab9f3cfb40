"""AREA (area of interest) of maestro:segment / classify / embed: an extent in any CRS (drawn
or the canvas: "xmin,xmax,ymin,ymax [CRS]"; or a layer's extent) is converted to the reference
raster's CRS and only that part is computed, with the values of a whole-raster run there.
Through processing.run and qgis_process, on real GeoTIFFs and tiny exported models."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import run_qgis_process
from tests.plugin.conftest import S2_DATES, read_raster

pytestmark = pytest.mark.usefixtures("maestro")


def _run(alg, params):
    import processing

    return processing.run(f"maestro:{alg}", params)


def _utm_box(s2_path, cols=(30, 70), rows=(40, 80)):
    """(xmin, ymin, xmax, ymax) in the S2 raster's CRS covering the given pixel ranges."""
    import rasterio

    with rasterio.open(s2_path) as src:
        t = src.transform
    return (t.c + cols[0] * t.a, t.f + rows[1] * t.e, t.c + cols[1] * t.a, t.f + rows[0] * t.e)


def _as_wgs84_extent(box_utm):
    """The QGIS extent text of a UTM 33N box in EPSG:4326 (xmin,xmax,ymin,ymax [CRS])."""
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds("EPSG:32633", "EPSG:4326", *box_utm, densify_pts=21)
    return f"{w!r},{e!r},{s!r},{n!r} [EPSG:4326]", (w, s, e, n)


def _window_in(full_profile, sub_profile, sub_shape):
    """(rows, cols) slices of the sub raster's pixels in the full raster (same grid)."""
    ft, st = full_profile["transform"], sub_profile["transform"]
    c0 = (st.c - ft.c) / ft.a
    r0 = (st.f - ft.f) / ft.e
    assert abs(c0 - round(c0)) < 1e-6 and abs(r0 - round(r0)) < 1e-6, "not on the same grid"
    r0, c0 = round(r0), round(c0)
    return slice(r0, r0 + sub_shape[0]), slice(c0, c0 + sub_shape[1])


@pytest.fixture(scope="module")
def full_map(tiny_models, rasters, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("aoi_full") / "lc.tif")
    _run("segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3],
                     "DEM": [rasters.dem], "OUTPUT": out, "DEVICE": "cpu"})
    return out


def test_area_parameter_is_an_optional_extent_on_every_inference_algorithm():
    from qgis.core import Qgis, QgsApplication, QgsProcessingParameterExtent

    for name in ("segment", "classify", "embed", "batch_segment"):
        alg = QgsApplication.processingRegistry().algorithmById(f"maestro:{name}")
        param = alg.parameterDefinition("AREA")
        assert isinstance(param, QgsProcessingParameterExtent), name
        assert param.flags() & Qgis.ProcessingParameterFlag.Optional, name
        assert param.help() and "<b>AREA</b>" in alg.shortHelpString(), name


def test_segment_area_in_another_crs_computes_only_that_part(tiny_models, rasters, full_map,
                                                             tmp_path):
    box = _utm_box(rasters.s2[0])
    area, _ = _as_wgs84_extent(box)
    out = str(tmp_path / "lc_area.tif")
    result = _run("segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:3],
                              "DEM": [rasters.dem], "OUTPUT": out, "AREA": area,
                              "DEVICE": "cpu"})
    assert json.loads(result["DATES_USED"])["s2"] == sorted(S2_DATES[:3])
    sub, sub_profile = read_raster(out)
    full, full_profile = read_raster(full_map)
    assert sub_profile["crs"] == full_profile["crs"]
    # the output covers the box (converted back to UTM it grows by under a pixel) and no more
    import rasterio

    with rasterio.open(out) as src:
        left, bottom, right, top = src.bounds
    xmin, ymin, xmax, ymax = box
    assert left <= xmin + 1e-6 and right >= xmax - 1e-6 and bottom <= ymin + 1e-6 \
        and top >= ymax - 1e-6
    assert xmin - left <= 10 and right - xmax <= 10 and ymin - bottom <= 10 and top - ymax <= 10
    assert sub.shape[1] < full.shape[1] and sub.shape[2] < full.shape[2]
    rows, cols = _window_in(full_profile, sub_profile, sub.shape[1:])
    # tiles stay on the whole run's grid: the same values as the whole run there
    assert np.array_equal(sub[0], full[0][rows, cols])
    assert (sub[0] != 255).mean() > 0.9


def test_classify_and_embed_take_a_layers_extent(tiny_models, rasters, tmp_path):
    """AREA given as a layer (the DEM on EPSG:3035 covers the whole patch; a small raster in
    EPSG:3035 covering part of it is the area)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    box = _utm_box(rasters.s2[0], cols=(0, 48), rows=(0, 48))
    w, s, e, n = transform_bounds("EPSG:32633", "EPSG:3035", *box, densify_pts=21)
    area_layer = str(tmp_path / "area_laea.tif")
    with rasterio.open(area_layer, "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="uint8", crs="EPSG:3035",
                       transform=from_origin(w, n, (e - w) / 10, (n - s) / 10)) as dst:
        dst.write(np.ones((1, 10, 10), "uint8"))
    from engine.contract import read_model_metadata

    for alg, task in (("classify", "classification"), ("embed", "embedding")):
        full_out, area_out = str(tmp_path / f"{alg}_full.tif"), str(tmp_path / f"{alg}_area.tif")
        common = {"MODEL": tiny_models[task], "S2": rasters.s2[:2], "DEM": [rasters.dem],
                  "DEVICE": "cpu"}
        _run(alg, dict(common, OUTPUT=full_out))
        _run(alg, dict(common, OUTPUT=area_out, AREA=area_layer))
        full, full_profile = read_raster(full_out)
        sub, sub_profile = read_raster(area_out)
        assert sub.shape[0] == full.shape[0]
        assert sub.shape[1] * sub.shape[2] < full.shape[1] * full.shape[2], alg
        rows, cols = _window_in(full_profile, sub_profile, sub.shape[1:])
        assert rows.start == 0 and cols.start == 0, alg  # the box is at the top-left corner
        np.testing.assert_allclose(sub, full[:, rows, cols], rtol=1e-5, atol=1e-5)
    assert read_model_metadata(tiny_models["embedding"]).task == "embedding"


def test_area_outside_the_rasters_stops_with_a_message(tiny_models, rasters, tmp_path):
    from qgis.core import QgsProcessingException

    out = tmp_path / "lc.tif"
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        _run("segment", {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2],
                         "DEM": [rasters.dem], "OUTPUT": str(out),
                         "AREA": "2.0,2.1,48.0,48.1 [EPSG:4326]", "DEVICE": "cpu"})
    assert not os.path.exists(out)


def test_qgis_process_area(qgis_env, tiny_models, rasters, full_map, tmp_path):
    area, _ = _as_wgs84_extent(_utm_box(rasters.s2[0]))
    out = tmp_path / "lc_area.tif"
    run = run_qgis_process(qgis_env, "run", "maestro:segment", "--",
                           f"MODEL={tiny_models['segmentation']}",
                           *[f"S2={p}" for p in rasters.s2[:3]], f"DEM={rasters.dem}",
                           f"AREA={area}", f"OUTPUT={out}", "DEVICE=cpu")
    assert run.returncode == 0, run.stdout + run.stderr
    sub, sub_profile = read_raster(out)
    full, full_profile = read_raster(full_map)
    rows, cols = _window_in(full_profile, sub_profile, sub.shape[1:])
    # the 40 x 40 px box, back from EPSG:4326, touches at most one more pixel on each side
    assert 40 <= sub.shape[1] <= 42 and 40 <= sub.shape[2] <= 42, sub.shape
    assert np.array_equal(sub[0], full[0][rows, cols])
