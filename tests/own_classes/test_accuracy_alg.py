"""maestro:accuracy_assessment through processing.run and qgis_process on a map and a
reference sample built from Olofsson et al. (2014)'s example: the published accuracies come
back (the areas scale with the map: 900 ha here, 900 000 ha in the paper)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_qgis_process

USERS = [0.88, 0.73, 0.93, 0.96]
PRODUCERS = [0.75, 0.85, 0.93, 0.96]
#: section 5.2.2's areas (ha) / 1000
AREAS = [21.158, 11.686, 285.770, 581.386]


def _rows(layer):
    return {f["class_name"]: f for f in layer.getFeatures()}


@pytest.mark.usefixtures("maestro")
def test_processing_run_reproduces_the_published_example(olofsson_sample, tmp_path):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    map_path, points = olofsson_sample
    report = tmp_path / "accuracy.html"
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    result = processing.run("maestro:accuracy_assessment", {
        "INPUT": map_path, "REFERENCE": points, "CLASS_FIELD": "ref",
        "OUTPUT": "memory:", "REPORT": str(report)}, context=context, feedback=feedback)
    assert round(result["OVERALL_ACCURACY"], 2) == 0.95
    assert round(result["OVERALL_ACCURACY_CI95"], 2) == 0.02
    assert result["SAMPLE_SIZE"] == 640          # the point outside the map is left out
    layer = result["OUTPUT"]
    if isinstance(layer, str):
        layer = context.getMapLayer(layer)
    rows = _rows(layer)
    names = ["deforestation", "forest gain", "stable forest", "stable non-forest"]
    assert [round(rows[n]["users_acc"], 2) for n in names] == USERS
    assert [round(rows[n]["producers_acc"], 2) for n in names] == PRODUCERS
    assert [round(rows[n]["area_ha"], 3) for n in names] == pytest.approx(AREAS, abs=0.0015)
    assert [round(rows[n]["mapped_ha"], 3) for n in names] == [18.0, 13.5, 288.0, 580.5]
    assert round(rows["deforestation"]["p_ref_0"], 4) == 0.0176
    html = report.read_text(encoding="utf-8")
    assert "Error matrix in area proportions" in html and "stable non-forest (3)" in html


@pytest.mark.usefixtures("maestro")
def test_unknown_reference_class_is_kept_and_warned(olofsson_sample, tmp_path):
    """A reference class the map never shows is kept (producer's accuracy 0), as the help
    says, and warned (a new-user trial: it was refused, so analysts dropped such points and
    the accuracy looked better than it is)."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from tests.own_classes.conftest import write_points

    from osgeo import ogr

    map_path, points = olofsson_sample
    src = ogr.Open(str(points))
    layer = src.GetLayer(0)
    xs, ys, refs = [], [], []
    for f in layer:
        g = f.GetGeometryRef()
        xs.append(g.GetX())
        ys.append(g.GetY())
        refs.append(f.GetField("ref"))
    src = None
    pts = write_points(tmp_path / "wet.gpkg", xs + [500015.0, 500045.0],
                       ys + [5099985.0, 5099985.0], refs + ["wetland", "wetland"])

    class Feedback(QgsProcessingFeedback):
        warnings: list = []

        def pushWarning(self, text):  # noqa: N802 (QgsProcessingFeedback API)
            self.warnings.append(text)

    feedback = Feedback()
    out = processing.run("maestro:accuracy_assessment", {
        "INPUT": map_path, "REFERENCE": pts, "CLASS_FIELD": "ref", "OUTPUT": "memory:"},
        context=QgsProcessingContext(), feedback=feedback)
    assert any("'wetland'" in w and "never shows" in w for w in feedback.warnings)
    rows = {f["class_name"]: f for f in out["OUTPUT"].getFeatures()}
    assert rows["wetland"]["producers_acc"] in (0.0, None)
    assert out["OVERALL_ACCURACY"] < 0.95               # 0.95 without the two wetland points


def test_reference_values_are_class_names_first_then_ids():
    """A model trained on labels coded 2, 3, 4, 8 names its classes "2", "3", "4", "8" (ids
    0-3): a reference coded the same way is matched by name (a new-user trial got overall
    accuracy 0.069 instead of the real figure, matched as ids)."""
    from maestro_plugin.algorithms.accuracy_assessment import reference_ids

    names = {0: "2", 1: "3", 2: "4", 3: "8"}
    ids, warnings = reference_ids([2, "3", 8.0, "4"], names, {0, 1, 2, 3})
    assert ids == [0, 1, 3, 2] and warnings == []
    names = {0: "forest", 1: "grassland"}
    ids, warnings = reference_ids([0, "Forest", 4, "cultivated land"], names, {0, 1})
    assert ids == [0, 0, 4, 5] and names[5] == "cultivated land"   # after id 4, in use
    assert any("4 are not classes of the map" in w or "value(s) 4 are not" in w
               for w in warnings)
    assert any("'cultivated land'" in w for w in warnings)


def test_qgis_process(qgis_env, olofsson_sample, tmp_path):
    map_path, points = olofsson_sample
    table = tmp_path / "acc.csv"
    run = run_qgis_process(qgis_env, "--json", "run", "maestro:accuracy_assessment", "--",
                           f"INPUT={map_path}", f"REFERENCE={points}", "CLASS_FIELD=ref",
                           f"OUTPUT={table}", f"REPORT={tmp_path / 'r.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert round(results["OVERALL_ACCURACY"], 2) == 0.95
    text = table.read_text()
    assert "users_acc" in text.splitlines()[0] and len(text.splitlines()) == 5
    assert (tmp_path / "r.html").exists()


@pytest.mark.usefixtures("maestro")
def test_points_in_another_crs_give_the_same_estimates(olofsson_sample, tmp_path):
    """The reference points reprojected to WGS 84 are transformed back onto the map."""
    import processing
    from osgeo import ogr, osr

    from tests.own_classes.conftest import write_points

    map_path, points = olofsson_sample
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(32633)
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    ds = ogr.Open(points)
    xs, ys, refs = [], [], []
    for f in ds.GetLayer(0):
        x, y, _ = tr.TransformPoint(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
        xs.append(x)
        ys.append(y)
        refs.append(f.GetField("ref"))
    ds = None
    wgs = write_points(tmp_path / "wgs84.gpkg", xs, ys, refs, epsg=4326)
    a = processing.run("maestro:accuracy_assessment", {
        "INPUT": map_path, "REFERENCE": points, "CLASS_FIELD": "ref", "OUTPUT": "memory:"})
    b = processing.run("maestro:accuracy_assessment", {
        "INPUT": map_path, "REFERENCE": wgs, "CLASS_FIELD": "ref", "OUTPUT": "memory:"})
    assert b["SAMPLE_SIZE"] == a["SAMPLE_SIZE"] == 640
    assert b["OVERALL_ACCURACY"] == pytest.approx(a["OVERALL_ACCURACY"], abs=1e-12)


def test_class_labels_differing_only_by_case_are_one_class():
    from maestro_plugin.algorithms.train_classes import merge_case_variants

    items = [("g1", "Forest"), ("g2", "forest"), ("g3", "forest"), ("g4", "water"),
             ("g5", "Water "), ("g6", "grass")]
    merged, notes = merge_case_variants(items)
    assert [label for _, label in merged] == ["forest", "forest", "forest", "Water", "Water",
                                              "grass"]              # a tie: the first sorted
    assert len(notes) == 2 and all(n.startswith("warning:") for n in notes)
    assert "'Forest', 'forest'" in notes[0] and "one class 'forest'" in notes[0]
