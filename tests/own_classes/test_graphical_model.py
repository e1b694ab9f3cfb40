"""resources/models/maestro_own_classes.model3 through qgis_process: train (tiny embedding
model, west labels of the bundled sample) -> segment with the new model -> accuracy assessment
against a census of the reference map (every pixel a sample point)."""
from __future__ import annotations

import json
import os

import numpy as np

from tests.conftest import ROOT, run_qgis_process
from tests.own_classes.conftest import SAMPLE, sample_inputs, write_points

MODEL3 = os.path.join(ROOT, "resources", "models", "maestro_own_classes.model3")
NAMES = {2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}


def test_train_segment_assess(qgis_env, tiny_models, west_labels, tmp_path):
    import rasterio

    with rasterio.open(os.path.join(SAMPLE, "lulc_reference.tif")) as ds:
        codes, tr, epsg = ds.read(1), ds.transform, ds.crs.to_epsg()
    rows, cols = np.nonzero(np.isin(codes, list(NAMES)))
    xs, ys = tr * (cols + 0.5, rows + 0.5)
    reference = write_points(tmp_path / "reference.gpkg", xs, ys,
                             [NAMES[int(c)] for c in codes[rows, cols]], epsg=epsg)
    labels = west_labels[0]
    inputs = sample_inputs()
    out = {k: tmp_path / v for k, v in (("NEW_MODEL", "m.onnx"), ("MAP", "map.tif"),
                                        ("TRAINING_REPORT", "train.html"),
                                        ("ACCURACY_TABLE", "acc.csv"),
                                        ("ACCURACY_REPORT", "acc.html"))}
    run = run_qgis_process(
        qgis_env, "--json", "run", MODEL3, "--", f"MODEL={tiny_models['embedding']}",
        *[f"S2={p}" for p in inputs["s2"]], f"DEM={inputs['dem'][0]}",
        f"LABELS={labels}|layername=polygons", f"LABELS={labels}|layername=points",
        "CLASS_FIELD=class", "COLOR_FIELD=color", f"REFERENCE={reference}",
        "REFERENCE_FIELD=ref", *[f"{_param(k)}={v}" for k, v in out.items()])
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    for path in out.values():
        assert path.exists(), path
    table = out["ACCURACY_TABLE"].read_text().splitlines()
    assert table[0].startswith("class_id,class_name") and len(table) >= 3
    assert "Error matrix in area proportions" in out["ACCURACY_REPORT"].read_text()
    assert str(out["MAP"]) in json.dumps(results)


def _param(key):
    """The model output's parameter name as qgis_process takes it (QGIS 3.40 derives it from
    the output's description)."""
    return {"NEW_MODEL": "new_model_onnx", "TRAINING_REPORT": "training_report_html",
            "MAP": "map_of_your_classes", "ACCURACY_TABLE": "accuracy_and_area_table",
            "ACCURACY_REPORT": "accuracy_report_html"}[key]
