"""The dock panel in real headless QGIS (pytest-qgis): fill the widgets, run the QgsTask,
wait for it while spinning the event loop, check the styled layer added; cancel; errors
in the message bar."""
from __future__ import annotations

import os
import time

import pytest
from qgis.core import Qgis

from tests.plugin.conftest import S2_DATES


@pytest.fixture
def dock(qgis_iface, maestro):
    from qgis.PyQt.QtCore import Qt

    from maestro_plugin.dock import MaestroDock

    widget = MaestroDock(qgis_iface, qgis_iface.mainWindow())
    # pytest-qgis' iface.addDockWidget is a stub: dock into the real main window
    qgis_iface.mainWindow().addDockWidget(Qt.RightDockWidgetArea, widget)
    qgis_iface.messageBar().clear_messages()
    yield widget
    qgis_iface.mainWindow().removeDockWidget(widget)
    widget.deleteLater()


@pytest.fixture
def project_layers():
    """Add raster layers to the project; all are removed (and dropped) afterwards."""
    from qgis.core import QgsProject, QgsRasterLayer

    added = []

    def add(path):
        layer = QgsRasterLayer(path, os.path.splitext(os.path.basename(path))[0], "gdal")
        assert layer.isValid(), path
        QgsProject.instance().addMapLayer(layer)
        added.append(layer.id())
        return layer

    yield add
    QgsProject.instance().removeAllMapLayers()
    added.clear()


def wait_for(dock, timeout=120):
    """Spin the event loop until the dock's run ends; returns (ok, payload, spins)."""
    from qgis.core import QgsApplication

    results, spins = [], 0
    dock.run_finished.connect(lambda ok, payload: results.append((ok, payload)))
    deadline = time.monotonic() + timeout
    while not results and time.monotonic() < deadline:
        QgsApplication.processEvents()
        spins += 1
        time.sleep(0.002)
    assert results, "the task did not finish"
    return (*results[0], spins)


def test_dock_shows_model_and_runs_task_adding_styled_layer(dock, qgis_iface, project_layers,
                                                           tiny_models, rasters, tmp_path):
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    from maestro_plugin import diagnostics

    dock.set_model(tiny_models["segmentation"])
    info = dock.model_info.toPlainText()
    assert "Task: segmentation" in info and "S2: 10 bands" in info and "forest" in info
    assert "training_data" in info  # the card
    assert set(dock.modality_inputs) == {"S2", "DEM"}
    s2, dem = dock.modality_inputs["S2"], dock.modality_inputs["DEM"]
    for path in rasters.s2[:3]:
        assert s2.add_layer(project_layers(path))
    # dates read as the engine reads them (file names here), shown and editable
    assert [s2.table.item(r, 1).text() for r in range(3)] == S2_DATES[:3]
    s2.move_row(0, 1)
    assert s2.table.item(0, 0).text() == "S2_20150731"
    s2.set_date(2, "2015-09-10")
    dem_layer = project_layers(rasters.dem)
    dem.combo.setLayer(dem_layer)
    dem.add_button.click()
    assert dem.table.rowCount() == 1
    out = tmp_path / "dock-lc.tif"
    dock.output_widget.setFilePath(str(out))
    dock.overlap_spin.setValue(50)
    dock.confidence_check.setChecked(True)
    dock.run_button.click()
    assert dock.task is not None
    assert not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    ok, layer_id, spins = wait_for(dock)
    assert ok, layer_id
    assert spins > 1  # the event loop kept turning while the task ran
    layer = QgsProject.instance().mapLayer(layer_id)
    assert layer.source() == str(out) and out.exists()
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == ["forest", "grassland", "artificial"]
    renderer = layer = None
    conf = [lyr for lyr in QgsProject.instance().mapLayers().values()
            if lyr.source() == str(tmp_path / "dock-lc_confidence.tif")]
    assert len(conf) == 1 and conf[0].renderer().type() == "singlebandpseudocolor"
    conf = None
    assert dock.progress_bar.value() == 100 and dock.run_button.isEnabled()
    # the edited date is the one the engine used
    assert dock.last_report.dates["s2"] == ["2015-07-31", "2015-08-20", "2015-09-10"]
    assert diagnostics.last_run()["provider"] == "CPUExecutionProvider"
    assert any("CPUExecutionProvider" in m
               for m in qgis_iface.messageBar().get_messages(Qgis.Success))


def test_dock_cancel_mid_run_leaves_no_output(dock, qgis_iface, project_layers, tiny_models,
                                             rasters, tmp_path):
    from qgis.core import QgsProject

    dock.set_model(tiny_models["segmentation"])
    for path in rasters.s2_big:
        dock.modality_inputs["S2"].add_layer(project_layers(path))
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem_big))
    dock.batch_spin.setValue(1)
    out = tmp_path / "cancelled.tif"
    dock.output_widget.setFilePath(str(out))
    layers_before = len(QgsProject.instance().mapLayers())
    progress = []
    assert dock.run()
    dock.task.progressChanged.connect(
        lambda value: (progress.append(value), value > 0 and dock.cancel_button.click()))
    ok, message, _ = wait_for(dock)
    assert not ok and "cancel" in message.lower()
    assert progress and 0 < progress[-1] < 100  # it was cancelled mid-run
    assert not os.listdir(tmp_path) and len(QgsProject.instance().mapLayers()) == layers_before
    assert message in qgis_iface.messageBar().get_messages(Qgis.Critical)[-1]


def test_dock_engine_error_goes_to_the_message_bar(dock, qgis_iface, project_layers,
                                                   tiny_models, rasters, tmp_path):
    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layer(project_layers(rasters.s2_9bands))
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem))
    dock.output_widget.setFilePath(str(tmp_path / "x.tif"))
    assert dock.run()
    ok, message, _ = wait_for(dock)
    assert not ok and "has 9 bands" in message
    assert "has 9 bands" in qgis_iface.messageBar().get_messages(Qgis.Critical)[-1]
    assert not os.listdir(tmp_path)


def test_dock_missing_modality_is_refused_before_running(dock, qgis_iface, project_layers,
                                                         tiny_models, rasters):
    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layer(project_layers(rasters.s2[0]))
    assert dock.run() is None and dock.task is None
    assert "needs the modality DEM" in qgis_iface.messageBar().get_messages(Qgis.Critical)[-1]


def test_dock_bad_model_shows_error_without_raising(dock, qgis_iface, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    dock.set_model(str(bad))  # guarded: must not raise into the event loop
    assert dock.meta is None and not dock.modality_inputs
    assert "not a valid ONNX model" in qgis_iface.messageBar().get_messages(Qgis.Critical)[-1]
    assert "not a valid ONNX model" in dock.model_info.toPlainText()


def test_init_gui_adds_dock_menu_and_toolbar_and_unloads(qgis_iface, maestro):
    """A second plugin instance with an iface: GUI parts only (the provider id is taken)."""
    from qgis.core import QgsApplication

    from maestro_plugin.plugin import MaestroPlugin

    plugin = MaestroPlugin(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.provider is None  # the session's provider stays registered
        assert plugin.dock is not None and plugin.dock.parent() is qgis_iface.mainWindow()
        assert [a.text() for a in plugin.actions] == [
            "MAESTRO land cover panel", "Install dependencies…", "Diagnostics…"]
        assert plugin.dock.isHidden()
        plugin.actions[0].trigger()  # the main window is not shown here: check the dock's own state
        assert not plugin.dock.isHidden()
    finally:
        plugin.unload()
    assert plugin.dock is None and not plugin.actions
    assert QgsApplication.processingRegistry().providerById("maestro") is not None


def test_dates_shown_are_passed_on_only_when_edited(qgis_app, project_layers, tiny_models,
                                                   rasters):
    """An unchanged date lets the engine read it itself (tags keep the hour); an edited
    one is passed as the override; an invalid one is refused with the layer named."""
    import datetime

    from engine.contract import read_model_metadata
    from maestro_plugin.widgets import ModalityInput

    spec = read_model_metadata(tiny_models["segmentation"]).modality("s2")
    widget = ModalityInput(spec)
    try:
        for path in rasters.s2_tagged[:2]:
            widget.add_layer(project_layers(path))
        assert [widget.table.item(r, 1).text() for r in range(2)] == S2_DATES[:2]  # from tags
        widget.set_date(1, "2016-02-03")
        assert [x.date for x in widget.layer_inputs()] == [None, datetime.date(2016, 2, 3)]
        widget.set_date(0, "03/02/2016")
        with pytest.raises(ValueError, match="date '03/02/2016' of layer 'scene_a'"):
            widget.layer_inputs()
    finally:
        widget.deleteLater()
