"""The dock's own-classes parts in real headless QGIS (pytest-qgis), through the widgets: the
*Train* part trains on labels drawn from the bundled reference map
(scripts/own_classes_labels.py) with the tiny embedding model exported by our training code,
and the new model becomes the dock's model and maps; cancel; the message when scikit-learn
is missing; the similarity map tool's click gives a styled layer (replacing the previous)."""
from __future__ import annotations

import glob
import importlib.util
import os
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.plugin.test_dock import dock, project_layers  # noqa: F401 (fixtures)

SAMPLE = os.path.join(ROOT, "resources", "sample")


def wait_signal(signal, timeout=600):
    """Spin the event loop until ``signal`` fires; returns its arguments."""
    from qgis.core import QgsApplication

    got = []
    signal.connect(lambda *args: got.append(args))
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.005)
    assert got, "the background task did not finish"
    return got[0]


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    """The labels GeoPackage of scripts/own_classes_labels.py (west part only, seed 0, 80
    pixels per class): layers 'points' and 'polygons', fields 'class' and 'color'."""
    spec = importlib.util.spec_from_file_location(
        "own_classes_labels", os.path.join(ROOT, "scripts", "own_classes_labels.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = str(tmp_path_factory.mktemp("dock-labels") / "labels.gpkg")
    module.write(path, seed=0, per_class=80)
    return path


def fill_sample(dock, project_layers):
    """The bundled sample (S2 L1C, 5 dates; DEM) in the dock's rows."""
    s2 = [project_layers(p) for p in sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))]
    assert dock.modality_inputs["S2"].add_layers(s2) == []
    assert dock.modality_inputs["DEM"].add_layer(project_layers(os.path.join(SAMPLE, "dem.tif")))
    return s2


def add_labels(path):
    from qgis.core import QgsProject, QgsVectorLayer

    layers = []
    for name in ("polygons", "points"):
        layer = QgsVectorLayer(f"{path}|layername={name}", f"my {name}", "ogr")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
        layers.append(layer)
    return layers


def test_train_part_trains_and_the_new_model_becomes_the_dock_model(
        dock, qgis_iface, project_layers, tiny_models, labels, tmp_path):
    from qgis.core import Qgis, QgsProject

    from engine.contract import read_model_metadata

    dock.set_model(tiny_models["embedding"])
    fill_sample(dock, project_layers)
    panel = dock.train_panel
    assert panel.deps_label.isHidden() and panel.train_button.isEnabled()
    label_layers = add_labels(labels)
    # the project's vector layers are offered; ticking them offers their common fields
    offered = [panel.labels_list.item(i).text() for i in range(panel.labels_list.count())]
    assert offered == ["my points (point)", "my polygons (polygon)"]   # by name
    panel.set_label_layers(label_layers)
    assert panel.class_combo.currentText() == "class"      # chosen by its name
    assert panel.colour_combo.currentText() == "color"
    panel.name_edit.setText("west classes")
    out = tmp_path / "west.onnx"
    panel.model_output.setFilePath(str(out))
    panel.folds_spin.setValue(3)
    panel.train_button.click()
    assert panel.run is not None and panel.cancel_button.isEnabled()
    assert not panel.train_button.isEnabled() and not dock.run_button.isEnabled()
    # the background task shares no layer with the canvas: no project in its context, the
    # labels as GeoPackage copies written before it started
    assert panel.run.context.project() is None
    copies = panel.run.parameters["LABELS"]
    assert len(copies) == 2 and all(c.endswith(".gpkg") and os.path.isfile(c) for c in copies)
    ok, payload = wait_signal(dock.training_finished)
    assert ok, payload
    assert not any(os.path.exists(c) for c in copies)           # removed once done
    # the new model is the dock's model: its classes, the same input rows kept
    assert payload == str(out) and out.exists()
    assert dock.model_path == str(out) and dock.model_widget.filePath() == str(out)
    assert [c.name for c in dock.meta.classes] == ["artificial surface", "forest",
                                                   "grassland", "shrubland"]
    assert dock.meta.name == "west classes" and dock.meta.task == "segmentation"
    assert len(dock.modality_inputs["S2"].layer_ids()) == 5
    assert len(dock.modality_inputs["DEM"].layer_ids()) == 1
    # the headline: both accuracies from the model's provenance, the verdict, the report
    metrics = read_model_metadata(str(out)).provenance["metrics"]
    oa = metrics["blocked_cv_head"]["overall_accuracy"]
    rf = metrics["blocked_cv_random_forest"]["overall_accuracy"]
    status = panel.status_label.text()
    assert f"new model {100 * oa:.1f} %" in status and f"random forest {100 * rf:.1f} %" in status
    assert metrics["verdict"].split(":")[0][:30] in status.replace("&#x27;", "'")
    report = tmp_path / "west-report.html"
    assert report.exists() and "Learning curve" in report.read_text(encoding="utf-8")
    assert f"href='file://{report}'" in status and panel.status_label.openExternalLinks()
    assert panel.progress_bar.value() == 100 and panel.train_button.isEnabled()
    assert any("trained and chosen" in m for m in
               qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Success))
    # Run maps the new classes
    dock.output_widget.setFilePath(str(tmp_path / "west-map.tif"))
    assert dock.run()
    ok, layer_id = wait_signal(dock.run_finished)
    assert ok, layer_id
    layer = QgsProject.instance().mapLayer(layer_id)
    assert [c.label for c in layer.renderer().classes()] == [
        "artificial surface", "forest", "grassland", "shrubland"]
    assert dock.areas_table.rowCount() == 4


def test_train_cancel_writes_no_model_and_keeps_the_model(dock, project_layers, tiny_models,
                                                          labels, tmp_path):
    dock.set_model(tiny_models["embedding"])
    fill_sample(dock, project_layers)
    dock.train_panel.set_label_layers(add_labels(labels))
    out = tmp_path / "never.onnx"
    dock.train_panel.model_output.setFilePath(str(out))
    from qgis.core import QgsApplication

    ended = []
    dock.training_finished.connect(lambda *args: ended.append(args))
    assert dock.train()
    deadline = time.monotonic() + 300
    while dock.train_panel.progress_bar.value() == 0 and time.monotonic() < deadline:
        QgsApplication.processEvents()   # cancel once it is under way
        time.sleep(0.005)
    assert not ended, ended
    dock.train_panel.cancel_button.click()
    ok, payload = ended[0] if ended else wait_signal(dock.training_finished)
    assert not ok and payload == "cancelled"
    assert not out.exists() and not (tmp_path / "never-report.html").exists()
    assert dock.meta.name == "tiny-embedding"
    assert "cancelled" in dock.train_panel.status_label.text()
    assert dock.train_panel.train_button.isEnabled() and dock.run_button.isEnabled()


def test_train_without_labels_is_refused_in_words(dock, project_layers, tiny_models):
    dock.set_model(tiny_models["embedding"])
    fill_sample(dock, project_layers)
    assert dock.train() is None  # guarded: the message instead
    assert "tick at least one label layer" in dock.last_message
    assert dock.train_panel.run is None


def test_train_error_is_the_algorithms_words(dock, qgis_iface, project_layers, tiny_models,
                                             tmp_path):
    """A memory layer drawn in QGIS (not a file: passed by its id to the background task)
    with one class only: the algorithm's own message, in the part and the message bar."""
    from qgis.core import (Qgis, QgsFeature, QgsGeometry, QgsPointXY, QgsProject,
                           QgsVectorLayer)

    dock.set_model(tiny_models["embedding"])
    s2 = fill_sample(dock, project_layers)
    drawn = QgsVectorLayer("Point?crs=EPSG:32633&field=kind:string", "drawn", "memory")
    ext = s2[0].extent()
    features = []
    for i in range(3):
        f = QgsFeature(drawn.fields())
        f.setAttribute("kind", "forest")
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(ext.xMinimum() + 50 + 30 * i,
                                                         ext.center().y())))
        features.append(f)
    assert drawn.dataProvider().addFeatures(features)[0]
    QgsProject.instance().addMapLayer(drawn)
    dock.train_panel.set_label_layers([drawn])
    assert dock.train_panel.class_combo.currentText() == "kind"   # the only field
    assert dock.train_panel.colour_combo.currentText() == "(palette colours)"
    dock.train_panel.model_output.setFilePath(str(tmp_path / "one.onnx"))
    assert dock.train()
    ok, message = wait_signal(dock.training_finished)
    assert not ok
    assert message.startswith("CLASS_FIELD: the labels hold 1 class(es) (forest)"), message
    assert "Error encountered" not in message and "Traceback" not in message
    assert "CLASS_FIELD" in dock.train_panel.status_label.text()
    assert any("Training failed: CLASS_FIELD" in m for m in
               qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical))
    assert not (tmp_path / "one.onnx").exists()
    assert dock.meta.name == "tiny-embedding" and dock.train_panel.train_button.isEnabled()


def test_train_part_says_which_packages_are_missing(monkeypatch, qgis_iface, maestro):
    from qgis.PyQt.QtCore import Qt

    from maestro_plugin import deps
    from maestro_plugin.dock import MaestroDock

    monkeypatch.setitem(sys.modules, "sklearn", None)    # `import sklearn` now fails
    assert [m for m, _ in deps.missing_train_dependencies()] == ["sklearn"]
    assert deps.missing_dependencies() == []             # the rest of MAESTRO is fine
    dock = MaestroDock(qgis_iface, qgis_iface.mainWindow())
    qgis_iface.mainWindow().addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    try:
        panel = dock.train_panel
        text = panel.deps_label.text()
        assert not panel.deps_label.isHidden() and "scikit-learn" in text
        assert "sklearn" not in text and "onnx," not in text  # the name to install; onnx is there
        assert "Install training packages" in text and "scikit-learn==1.9.1" in text
        assert not panel.train_button.isEnabled() and not panel.install_button.isHidden()
        assert dock.run_button.isEnabled() and dock.deps_label.isHidden()  # Run still works
        assert dock.train() is False and "scikit-learn" in dock.last_message
        panel.install_button.click()
        dialog = dock._dialogs[-1]
        assert dialog.train_check.isChecked()
        command = dialog.command_edit.text()
        assert "scikit-learn==1.9.1" in command and "onnx==1.23.2" in command
        assert "--target" in command
        assert "Missing: scikit-learn." == dialog.status_label.text()
        dialog.deleteLater()
    finally:
        qgis_iface.mainWindow().removeDockWidget(dock)
        dock.deleteLater()


def _click(tool, canvas, point):
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt

    event = QgsMapMouseEvent(canvas, QEvent.Type.MouseButtonRelease, QPoint(10, 10),
                             Qt.MouseButton.LeftButton)
    event.setMapPoint(point)
    tool.canvasReleaseEvent(event)


def test_similarity_tool_click_adds_a_styled_layer(dock, qgis_iface, project_layers,
                                                   tiny_models, rasters):
    import rasterio
    from qgis.core import (QgsCoordinateReferenceSystem, QgsPointXY, QgsProject,
                           QgsSingleBandPseudoColorRenderer)

    dock.set_model(tiny_models["segmentation"])      # contract 2: has 'embeddings'
    scenes = [project_layers(p) for p in rasters.s2[:3]]
    dock.modality_inputs["S2"].add_layers(scenes)
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem))
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32633"))
    dock.similarity_button.setChecked(True)
    assert canvas.mapTool() is dock.similarity_tool
    ext = scenes[0].extent()
    here = QgsPointXY(ext.xMinimum() + 0.3 * ext.width(), ext.yMinimum() + 0.6 * ext.height())
    _click(dock.similarity_tool, canvas, here)
    assert dock.similarity.run is not None and not dock.run_button.isEnabled()
    marker = dock.similarity_marker                       # a cross where the user clicked
    assert marker.isVisible() and marker.center() == here
    ok, first = wait_signal(dock.similarity_finished)
    assert ok, first
    layer = QgsProject.instance().mapLayer(first)
    assert layer.name() == f"similarity to {here.x():.0f}, {here.y():.0f}"
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    assert (renderer.classificationMin(), renderer.classificationMax()) == (-1.0, 1.0)
    renderer = None
    root = QgsProject.instance().layerTreeRoot()
    assert root.findLayers()[0].layer().id() == first     # on top
    with rasterio.open(layer.source()) as src:
        values = src.read(1)
        r, c = src.index(here.x(), here.y())
    assert values[r, c] == pytest.approx(1.0, abs=1e-4)   # the clicked place: itself
    assert np.nanmin(values) < 0.9                        # and not everything is alike
    embeddings = dock.similarity.cache[1]
    # a second click: the features are reused, the map replaces the first
    there = QgsPointXY(ext.xMinimum() + 0.7 * ext.width(), ext.yMinimum() + 0.2 * ext.height())
    layer = None
    _click(dock.similarity_tool, canvas, there)
    ok, second = wait_signal(dock.similarity_finished)
    assert ok, second
    assert dock.similarity.cache[1] == embeddings
    maps = [lyr.id() for lyr in QgsProject.instance().mapLayers().values()
            if lyr.customProperty("maestro/similarity")]
    assert maps == [second] and second != first
    assert dock.run_button.isEnabled() and dock.progress_bar.value() == 100
    assert marker.center() == there
    dock.similarity_button.setChecked(False)
    assert canvas.mapTool() is not dock.similarity_tool and not marker.isVisible()
    # a closed panel gives the map tool back
    dock.setFloating(True)      # shown on its own (the test's main window is not shown)
    dock.show()
    assert dock.isVisible()
    dock.similarity_button.setChecked(True)
    assert canvas.mapTool() is dock.similarity_tool
    dock.hide()
    assert canvas.mapTool() is not dock.similarity_tool
    assert not dock.similarity_button.isChecked()


def test_label_snapshot_keeps_unsaved_edits_and_the_class_field(tmp_path):
    """A scratch layer (no file) with a feature added in an edit session not saved yet: the
    copy the background task reads has every feature the user sees."""
    from qgis.core import (QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsVectorLayer)

    from maestro_plugin.inputs import PluginInputError
    from maestro_plugin.train_panel import label_snapshot

    layer = QgsVectorLayer("Point?crs=EPSG:32633&field=class:string", "scratch labels", "memory")
    QgsProject.instance().addMapLayer(layer)
    layer_id = layer.id()
    try:
        layer.startEditing()
        for i, name in enumerate(["forest", "water", "forest"]):
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(465200 + 10 * i, 5080200)))
            feature["class"] = name
            assert layer.addFeature(feature)
        assert layer.isModified()                      # not saved
        path = label_snapshot(layer.id(), str(tmp_path))
        copy = QgsVectorLayer(path, "copy", "ogr")
        assert copy.isValid() and copy.featureCount() == 3
        assert sorted(f["class"] for f in copy.getFeatures()) == ["forest", "forest", "water"]
        assert copy.crs().authid() == "EPSG:32633"
    finally:
        layer.rollBack()
        QgsProject.instance().removeMapLayer(layer_id)
    with pytest.raises(PluginInputError, match="removed from the project"):
        label_snapshot(layer_id, str(tmp_path))
