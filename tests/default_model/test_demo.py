"""`make demo` end to end: qgis_process maestro:segment on the bundled sample with the bundled
default model (MODEL empty), then the preview rendered by QGIS's print layout."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import rasterio

from tests.conftest import ROOT
from training.recipes.slovenia import CLASSES, IGNORE, heldout_scores, load_sample

METRICS = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.metrics.json")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, qgis_env):
    out = tmp_path_factory.mktemp("demo")
    env = dict(qgis_env, OUT=str(out))
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_demo_writes_a_styled_land_cover_map_on_the_sample_grid(demo):
    from osgeo import gdal

    path = demo / "landcover.tif"
    with rasterio.open(path) as ds, \
            rasterio.open(os.path.join(ROOT, "resources", "sample", "dem.tif")) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        assert (ds.height, ds.width) == (ref.height, ref.width)
        assert ds.dtypes[0] == "uint8"
        data = ds.read(1)
    assert set(np.unique(data)) <= {c["id"] for c in CLASSES}, "every sample pixel is valid"
    info = gdal.Info(str(path), format="json")["bands"][0]
    assert info["categories"][:len(CLASSES)] == [c["name"] for c in CLASSES]
    qml = (demo / "landcover.qml").read_text()
    assert all(c["name"] in qml for c in CLASSES)


def test_demo_reproduces_the_cards_engine_figures(demo):
    """The demo's map scored on the held-out columns equals what the recipe measured for the
    same file through the engine (written on the model card)."""
    with rasterio.open(demo / "landcover.tif") as ds:
        pred = ds.read(1).astype(np.int64)
    pred[pred == 255] = IGNORE
    got = heldout_scores(pred, load_sample().target)
    with open(METRICS) as fh:
        want = json.load(fh)["results"]["engine_full_raster"]
    assert got["overall_accuracy"] == pytest.approx(want["overall_accuracy"], abs=2e-3)
    assert got["miou"] == pytest.approx(want["miou"], abs=5e-3)


def test_demo_preview_shows_three_panels_and_the_classes(demo):
    from qgis.PyQt.QtGui import QColor, QImage

    image = QImage(str(demo / "landcover.png"))
    assert not image.isNull()
    assert image.width() > 2.5 * image.height() > 1000
    # Sample the right third (prediction panel + legend): the class colours must be there.
    colours = set()
    for x in range(image.width() // 2, image.width(), 3):
        for y in range(0, image.height(), 3):
            colours.add(QColor(image.pixel(x, y)).name())
    for c in CLASSES:
        assert c["color"].lower() in colours, c["name"]


def _render_preview_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "render_preview", os.path.join(ROOT, "scripts", "render_preview.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preview_classes_come_from_the_raster_and_refuse_non_class_rasters():
    rp = _render_preview_module()
    sample = os.path.join(ROOT, "resources", "sample")
    classes = rp.raster_classes(os.path.join(sample, "lulc_reference.tif"))
    assert [(v, name) for v, name, _ in classes] == [
        (1, "cultivated land"), (2, "forest"), (3, "grassland"), (4, "shrubland"),
        (8, "artificial surface")]
    with pytest.raises(ValueError, match="no colour table"):
        rp.raster_classes(os.path.join(sample, "dem.tif"))
