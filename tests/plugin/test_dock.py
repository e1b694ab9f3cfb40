"""The dock panel in real headless QGIS (pytest-qgis): fill the widgets, run the QgsTask,
wait for it while spinning the event loop, check the styled layers added (names, order,
visibility), the class areas, the messages; cancel; preview on the canvas extent; the
model field; adding layers (several at once, only plausible ones); the layout."""
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
    qgis_iface.mainWindow().addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, widget)
    qgis_iface.messageBar().clear_messages()
    yield widget
    qgis_iface.mainWindow().removeDockWidget(widget)
    widget.deleteLater()


@pytest.fixture
def project_layers():
    """Add raster layers to the project; all are removed (and dropped) afterwards."""
    from qgis.core import QgsProject, QgsRasterLayer

    def add(path):
        layer = QgsRasterLayer(path, os.path.splitext(os.path.basename(path))[0], "gdal")
        assert layer.isValid(), path
        QgsProject.instance().addMapLayer(layer)
        return layer

    yield add
    QgsProject.instance().removeAllMapLayers()


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


def all_messages(iface):
    return [m for level in (Qgis.MessageLevel.Info, Qgis.MessageLevel.Warning,
                            Qgis.MessageLevel.Critical, Qgis.MessageLevel.Success)
            for m in iface.messageBar().get_messages(level)]


def test_dock_runs_and_adds_readable_results(dock, qgis_iface, project_layers, tiny_models,
                                             rasters, tmp_path):
    """Several layers at once, sorted by date; land cover on top named after the model and
    the dates, confidence below and unchecked; class areas; plain success message."""
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    from maestro_plugin import diagnostics

    dock.set_model(tiny_models["segmentation"])
    info = dock.model_summary_text()
    assert "Segmentation" in info and "S2 (10 bands" in info and "forest" in info
    assert "DEM (1 band," in info and "1 bands" not in info
    assert "training_data" in info  # the card
    assert set(dock.modality_inputs) == {"S2", "DEM"}
    s2, dem = dock.modality_inputs["S2"], dock.modality_inputs["DEM"]
    # three dates added at once, out of order: the table is sorted by date
    assert s2.add_layers([project_layers(p) for p in rasters.s2[:3]]) == []
    assert s2.dates() == sorted(S2_DATES[:3])
    assert s2.layer_names() == ["S2_20150731", "S2_20150820", "S2_20150909"]
    s2.set_date(0, "2015-09-10")  # an edited date moves its row
    assert s2.layer_names() == ["S2_20150820", "S2_20150909", "S2_20150731"]
    dem_layer = project_layers(rasters.dem)
    assert dem.add_layer(dem_layer) and dem.layer_names() == ["dem_laea_20m"]
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
    project = QgsProject.instance()
    layer = project.mapLayer(layer_id)
    assert layer.source() == str(out) and out.exists()
    # named after the model (without the common prefix) and the date range
    assert layer.name() == "tiny-segmentation 2015-08-20…09-10"
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == ["forest", "grassland", "artificial"]
    renderer = None
    root = project.layerTreeRoot()
    order = [node.layer() for node in root.findLayers()]
    assert order[0].id() == layer_id  # on top
    conf = order[1]
    assert conf.source() == str(tmp_path / "dock-lc_confidence.tif")
    assert conf.name() == "confidence tiny-segmentation 2015-08-20…09-10"
    assert conf.renderer().type() == "singlebandpseudocolor"
    assert not root.findLayer(conf.id()).isVisible()  # below the map and unchecked
    assert root.findLayer(layer_id).isVisible()
    conf = layer = order = None
    assert dock.progress_bar.value() == 100 and dock.run_button.isEnabled()
    # the edited date is the one the engine used
    assert dock.last_report.dates["s2"] == ["2015-08-20", "2015-09-09", "2015-09-10"]
    assert diagnostics.last_run()["provider"] == "CPUExecutionProvider"
    message = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Success)[-1]
    assert "Land-cover map ready" in message and "(on the CPU, " in message
    assert "ExecutionProvider" not in message
    # class areas: hectares and percent per class, from the map's pixels
    import numpy as np
    import rasterio

    with rasterio.open(out) as src:
        ids = src.read(1)
        pixel_ha = abs(src.transform.a * src.transform.e) / 1e4
    mapped = (ids != 255).sum()
    assert not dock.areas_box.isHidden()
    table = dock.areas_table
    assert table.rowCount() == 3
    for row, class_id in enumerate((0, 1, 2)):
        n = int((ids == class_id).sum())
        assert table.item(row, 0).text() == ["forest", "grassland", "artificial"][row]
        # ground areas: UTM 33N's pixel area x 1/k^2 (+0.077 % here), within 0.1 %
        assert float(table.item(row, 1).text().replace(",", "")) == pytest.approx(
            n * pixel_ha, rel=1e-3, abs=0.006)
        assert float(table.item(row, 2).text()) == pytest.approx(100 * n / mapped, abs=0.06)
    assert sum(float(table.item(r, 2).text()) for r in range(3)) == pytest.approx(100, abs=0.2)
    assert np.any(ids != 255)


def test_empty_output_goes_to_qgis_temporary_folder(dock, project_layers, tiny_models,
                                                    rasters):
    from qgis.core import QgsProcessingUtils

    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layers([project_layers(p) for p in rasters.s2[:2]])
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem))
    assert dock.output_widget.filePath() == ""
    assert dock.run()
    ok, layer_id, _ = wait_for(dock)
    assert ok, layer_id
    # QGIS removes its Processing temporary folder when it closes
    temp = os.path.realpath(QgsProcessingUtils.tempFolder())
    assert os.path.realpath(dock.last_report.output_path).startswith(temp + os.sep)


def test_dock_cancel_is_not_an_error(dock, qgis_iface, project_layers, tiny_models, rasters,
                                     tmp_path):
    from qgis.core import QgsProject

    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layers([project_layers(p) for p in rasters.s2_big])
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
    # the user's own cancel: an information, not a red error
    assert qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical) == []
    assert "cancelled" in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Info)[-1]


def test_dock_engine_error_goes_to_the_message_bar(dock, qgis_iface, project_layers,
                                                   tiny_models, rasters, tmp_path):
    """A raster the band check lets through (unreadable band values) fails in the engine:
    the engine's message is shown, no output is left."""
    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layer(project_layers(rasters.s2_no_crs))
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem))
    dock.output_widget.setFilePath(str(tmp_path / "x.tif"))
    assert dock.run()
    ok, message, _ = wait_for(dock)
    assert not ok and "CRS" in message
    assert message in qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)[-1]
    assert not os.listdir(tmp_path)


def test_dock_missing_modality_is_refused_before_running(dock, qgis_iface, project_layers,
                                                         tiny_models, rasters):
    dock.set_model(tiny_models["segmentation"])
    dock.modality_inputs["S2"].add_layer(project_layers(rasters.s2[0]))
    assert dock.run() is None and dock.task is None
    message = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)[-1]
    assert "needs the modality DEM" in message and "Error" not in message


def test_dock_bad_model_shows_error_without_raising(dock, qgis_iface, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    dock.set_model(str(bad))  # guarded: must not raise into the event loop
    assert dock.meta is None and not dock.modality_inputs
    message = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Critical)[-1]
    assert "not a valid ONNX model" in message and "Error:" not in message
    assert "not a valid ONNX model" in dock.model_summary_text()


def test_empty_model_field_is_the_default_model_and_keeps_rows(dock, project_layers,
                                                               tiny_models, rasters):
    from maestro_plugin.algorithms.base import DEFAULT_MODEL

    # a new dock starts on the default model, field empty, placeholder naming it
    assert dock.model_widget.filePath() == "" and dock.model_path == DEFAULT_MODEL
    assert os.path.basename(DEFAULT_MODEL) in dock.model_widget.lineEdit().placeholderText()
    assert dock.meta.name == "maestro-tiny-slovenia-lulc"
    assert "maestro-tiny-slovenia-lulc (version 1)" in dock.model_summary_text()
    s2 = dock.modality_inputs["S2"]
    s2.add_layers([project_layers(p) for p in rasters.s2[:2]])
    widget = s2
    dock.model_widget.setFilePath(DEFAULT_MODEL)   # the same model, typed: nothing changes
    dock.model_widget.setFilePath("")              # cleared: still the default model
    assert dock.model_path == DEFAULT_MODEL and dock.modality_inputs["S2"] is widget
    assert widget.layer_names() == ["S2_20150731", "S2_20150820"]
    # another model with the same modalities keeps the rows too
    dock.model_widget.setFilePath(tiny_models["segmentation"])
    assert dock.model_path == tiny_models["segmentation"]
    assert dock.modality_inputs["S2"].layer_names() == ["S2_20150731", "S2_20150820"]


def test_adding_inputs_offers_and_accepts_only_plausible_layers(dock, qgis_iface,
                                                                project_layers, tiny_models,
                                                                rasters, tmp_path):
    from qgis.core import QgsProject

    from maestro_plugin.widgets import OUTPUT_PROPERTY

    dock.set_model(tiny_models["segmentation"])
    s2, dem = dock.modality_inputs["S2"], dock.modality_inputs["DEM"]
    scenes = [project_layers(p) for p in rasters.s2[:3]]
    dem_layer = project_layers(rasters.dem)
    nine = project_layers(rasters.s2_9bands)
    result = project_layers(rasters.dem_far)
    result.setCustomProperty(OUTPUT_PROPERTY, "segmentation")  # as the dock marks its results
    # the picker lists only what fits S2: not the DEM, not a 9-band raster
    picker = s2.open_picker(modal=False)
    listed = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert listed == sorted(layer.name() for layer in scenes)
    picker.set_all_checked()
    picker.accept()                       # several layers in one go
    assert s2.layer_names() == ["S2_20150731", "S2_20150820", "S2_20150909"]
    picker = dem.open_picker(modal=False)
    listed = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert listed == ["dem_laea_20m"]     # not the MAESTRO result, not the S2 scenes
    picker.reject()
    # adding a DEM to S2 directly is refused with a message, nothing added
    assert not s2.add_layer(dem_layer)
    message = qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Warning)[-1]
    assert "has 1 band; S2 needs 10 bands" in message
    assert s2.add_layers([nine]) and "has 9 bands" in s2.add_layers([nine])[0]
    assert s2.layer_names() == ["S2_20150731", "S2_20150820", "S2_20150909"]
    assert "MAESTRO result" in (dem.add_layers([result]) or [""])[0]
    # no Up/Down (the engine sorts by date); single-date modality: no date column
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QPushButton

    buttons = s2.findChildren(QPushButton, "", Qt.FindChildOption.FindDirectChildrenOnly)
    assert {b.text() for b in buttons} == {"Add layers…", "Remove"}
    assert dem.table.columnCount() == 1 and s2.table.columnCount() == 2
    assert dem.add_layer(dem_layer) and dem.dates() == []
    # a 13-band L1C scene: accepted when it names its bands (the model's are picked by
    # name), refused when it does not
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    l1c = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
           "B12"]
    for named in (True, False):
        path = tmp_path / f"S2_L1C_{'named' if named else 'unnamed'}_20150711.tif"
        with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=13,
                           dtype="uint16", crs="EPSG:32633",
                           transform=from_origin(465000, 5080000, 10, 10)) as dst:
            dst.write(np.full((13, 8, 8), 1000, dtype="uint16"))
            if named:
                dst.descriptions = tuple(l1c)
        problems = s2.add_layers([project_layers(str(path))])
        if named:
            assert problems == [] and s2.layer_names()[0] == path.stem
        else:
            assert len(problems) == 1 and "has 13 bands; S2 needs 10 bands" in problems[0]
    s2.table.selectRow(0)
    s2.remove_button.click()
    assert s2.layer_names() == ["S2_20150731", "S2_20150820", "S2_20150909"]
    QgsProject.instance().removeMapLayer(result.id())


def test_layout_fits_the_default_panel(dock, qgis_iface, tiny_models):
    """At 380 px wide (a QGIS side panel) and 1000 px high (a laptop screen, the panel a
    bit less): no horizontal scrollbar, Run visible, the S2 table shows its five rows, the
    class list is shown, a clear title."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtWidgets import QApplication

    dock.setFloating(True)
    dock.resize(380, 900)
    dock.show()
    dock.set_model("")  # the default model (5 S2 dates)
    for _ in range(5):
        QApplication.processEvents()
    assert dock.width() == 380, dock.width()
    assert not dock.scroll.horizontalScrollBar().isVisible()
    assert dock.scroll.widget().minimumSizeHint().width() <= dock.scroll.viewport().width()
    # Run (and Preview, Cancel) below the scrolled part: always in the panel
    for button in (dock.run_button, dock.preview_button):
        assert button.isVisible()
        bottom = button.mapTo(dock, QPoint(0, button.height())).y()
        assert bottom <= dock.height()
    s2 = dock.modality_inputs["S2"]
    table = s2.table
    rows_visible = (table.viewport().height()) // table.verticalHeader().defaultSectionSize()
    assert rows_visible >= 5
    assert dock.model_info.isVisible() and "shrubland" in dock.model_summary_text()
    assert dock.windowTitle() == "MAESTRO land cover"
    dock.hide()


def test_preview_runs_on_the_visible_map(dock, qgis_iface, project_layers, tiny_models,
                                         rasters):
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRectangle

    dock.set_model(tiny_models["segmentation"])
    scenes = [project_layers(p) for p in rasters.s2[:2]]
    dock.modality_inputs["S2"].add_layers(scenes)
    dock.modality_inputs["DEM"].add_layer(project_layers(rasters.dem))
    full = scenes[0].extent()
    canvas = qgis_iface.mapCanvas()
    canvas.resize(400, 400)
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32633"))
    # the north-west quarter of the scene
    quarter = QgsRectangle(full.xMinimum(), full.center().y(), full.center().x(),
                           full.yMaximum())
    canvas.setExtent(quarter)
    canvas.refresh()
    shown = canvas.extent()
    assert dock.run_preview()
    ok, layer_id, _ = wait_for(dock)
    assert ok, layer_id
    layer = QgsProject.instance().mapLayer(layer_id)
    assert layer.name() == "preview tiny-segmentation"
    ext = layer.extent()
    assert ext.area() <= 0.75 * full.area()  # a part of the scene, not all of it
    # the preview covers the visible map (within one tile of 32 px x 10 m) and not more
    assert ext.intersects(shown)
    assert ext.width() <= shown.width() + 2 * 320 and ext.height() <= shown.height() + 2 * 320
    assert dock.last_report.output_path != ""
    layer = None
    # a second preview replaces the first
    assert dock.run_preview()
    ok, second, _ = wait_for(dock)
    assert ok
    previews = [lyr for lyr in QgsProject.instance().mapLayers().values()
                if lyr.customProperty("maestro/preview")]
    assert [lyr.id() for lyr in previews] == [second]
    previews = None


def test_init_gui_adds_dock_menu_and_own_toolbar_and_unloads(qgis_iface, maestro):
    """A second plugin instance with an iface: GUI parts only (the provider id is taken)."""
    from qgis.core import QgsApplication

    from maestro_plugin import deps
    from maestro_plugin.plugin import MENU, MaestroPlugin

    qgis_iface.addPluginToRasterMenu.reset_mock()
    qgis_iface.addRasterToolBarIcon.reset_mock()
    plugin = MaestroPlugin(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.provider is None  # the session's provider stays registered
        assert plugin.dock is not None and plugin.dock.parent() is qgis_iface.mainWindow()
        assert [a.text() for a in plugin.actions] == [
            "MAESTRO land cover panel", "Install dependencies…", "Diagnostics…"]
        # the menu path the messages name is where the entries are
        calls = [(c.args[0], c.args[1].text()) for c in
                 qgis_iface.addPluginToRasterMenu.call_args_list]
        assert (MENU, "Install dependencies…") in calls
        assert deps.INSTALL_MENU_PATH == f"Raster > {MENU.lstrip('&')} > Install dependencies…"
        # the button is on the plugin's own toolbar (visible in a fresh profile), not on
        # the Raster toolbar (hidden there by default)
        assert not qgis_iface.addRasterToolBarIcon.called
        assert plugin.toolbar.objectName() == "MaestroToolbar"
        assert plugin.toolbar.actions() == [plugin.actions[0]] and not plugin.toolbar.isHidden()
        assert plugin.dock.isHidden()
        plugin.actions[0].trigger()
        assert not plugin.dock.isHidden()
    finally:
        plugin.unload()
    assert plugin.dock is None and not plugin.actions and plugin.toolbar is None
    assert QgsApplication.processingRegistry().providerById("maestro") is not None


def test_dates_shown_are_passed_on_only_when_edited(qgis_app, project_layers, tiny_models,
                                                   rasters):
    """An unchanged date lets the engine read it itself; an edited one is passed as the
    override; an invalid one is refused with the layer named. A date found only in
    TIFFTAG_DATETIME (the file's write time) is not shown: the cell is empty, to be typed."""
    import datetime

    from engine.contract import read_model_metadata
    from maestro_plugin.widgets import ModalityInput

    spec = read_model_metadata(tiny_models["segmentation"]).modality("s2")
    widget = ModalityInput(spec)
    try:
        widget.add_layers([project_layers(p) for p in rasters.s2_tagged[:2]])
        assert widget.dates() == ["", ""]               # write times are no acquisition dates
    finally:
        widget.deleteLater()
    widget = ModalityInput(spec)
    try:
        widget.add_layers([project_layers(p) for p in rasters.s2[:2]])
        assert widget.dates() == sorted(S2_DATES[:2])  # from the file names
        first, second = widget.layer_names()
        assert (first, second) == ("S2_20150731", "S2_20150820")
        widget.set_date(1, "2016-02-03")                # S2_20150820, still last
        assert [x.date for x in widget.layer_inputs()] == [None, datetime.date(2016, 2, 3)]
        widget.set_date(1, "03/02/2016")
        with pytest.raises(ValueError, match=f"date '03/02/2016' of layer '{second}'"):
            widget.layer_inputs()
    finally:
        widget.deleteLater()
