"""Run inside a real QGIS window (qgis --code, see scripts/screenshots.sh): walk through
the plugin as a new user would and save one PNG per step into $MAESTRO_SHOT_OUT.

Steps (each a QTimer hop so that QGIS paints in between): the dock at first start with
onnxruntime hidden (as on a machine without it) and the installer's plan; onnxruntime
back (what the installer achieves) and the dock filled; the run and its result; the Train
part (labels drawn from the reference map by scripts/own_classes_labels.py, trained, the
new model run); a similarity map from a click; the Diagnostics view; the Processing
Toolbox; the segment dialog; the graphical model.
"""
import json
import os
import sys
import traceback

from qgis.core import QgsContrastEnhancement, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface, plugins

INPUTS = os.environ["MAESTRO_SHOT_INPUTS"]
OUT = os.environ["MAESTRO_SHOT_OUT"]
ROOT = os.environ["MAESTRO_SHOT_ROOT"]  # qgis --code runs this without __file__
STATE = {"saved": []}


def save(widget, name):
    """Grab a widget (with its children) as docs/img/<name>.png."""
    QApplication.processEvents()
    path = os.path.join(OUT, f"{name}.png")
    widget.grab().save(path)
    STATE["saved"].append(path)


def save_screen(name):
    """The whole Xvfb screen (main window and the dialogs on top)."""
    QApplication.processEvents()
    path = os.path.join(OUT, f"{name}.png")
    QApplication.primaryScreen().grabWindow(0).save(path)
    STATE["saved"].append(path)


def rgb(layer):
    """True colour (B04, B03, B02 = bands 3, 2, 1 of the model's S2) with a stretch."""
    renderer = layer.renderer()
    if layer.bandCount() >= 3 and hasattr(renderer, "setRedBand"):
        renderer.setRedBand(3)
        renderer.setGreenBand(2)
        renderer.setBlueBand(1)
        layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm
                                     .StretchToMinimumMaximum)


def steps():
    """Generator of the steps; each yield waits for QGIS to paint."""
    main = iface.mainWindow()
    main.setGeometry(0, 0, 1600, 1000)  # no window manager under Xvfb
    with open(INPUTS, encoding="utf-8") as fh:
        inputs = json.load(fh)
    plugin = plugins["maestro"]
    # 1. first start on a machine without onnxruntime
    saved_ort = sys.modules.get("onnxruntime")
    sys.modules["onnxruntime"] = None
    dock = plugin.dock
    dock.refresh_dependencies()
    dock.show()
    dock.raise_()
    main.resizeDocks([dock], [420], Qt.Orientation.Horizontal)
    yield 1500
    save(main, "dock-first-start")
    installer = dock.open_installer()
    installer.move(300, 150)
    yield 1000
    save(installer, "installer")
    installer.close()
    # 2. what the installer achieves: onnxruntime importable; the dock is ready at once
    if saved_ort is not None:
        sys.modules["onnxruntime"] = saved_ort
    else:
        del sys.modules["onnxruntime"]
    dock.dependencies_installed(True)
    for name, paths in inputs["layers"].items():
        layers = []
        for path in paths:
            layer = QgsRasterLayer(path, os.path.splitext(os.path.basename(path))[0], "gdal")
            rgb(layer)
            QgsProject.instance().addMapLayer(layer)
            if name != "S2":  # the Sentinel-2 image stays visible under the result
                QgsProject.instance().layerTreeRoot().findLayer(layer.id()) \
                    .setItemVisibilityChecked(False)
            layers.append(layer)
        dock.modality_inputs[name].add_layers(layers)
    iface.mapCanvas().setExtent(QgsProject.instance().mapLayers()[
        dock.modality_inputs["S2"].layer_ids()[0]].extent())
    dock.output_widget.setFilePath(os.path.join(os.path.dirname(INPUTS), "land-cover.tif"))
    dock.confidence_check.setChecked(True)
    yield 2000
    save(main, "dock-before-run")
    # 3. the run
    done = []
    dock.run_finished.connect(lambda ok, payload: done.append((ok, payload)))
    dock.run()
    while not done:
        yield 500
    ok, payload = done[0]
    if not ok:
        print("MAESTRO screenshot: run failed:", payload)
    else:
        layer = QgsProject.instance().mapLayer(payload)
        iface.setActiveLayer(layer)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refresh()
    dock.scroll.verticalScrollBar().setValue(dock.scroll.verticalScrollBar().maximum())
    yield 3000
    save(main, "dock-after-run")
    # 3b. the Train part: labels as an analyst draws them (west part), trained, then mapped
    yield from train_steps(dock, inputs)
    # 4. Diagnostics
    diag = dock.open_diagnostics()
    yield 1000
    save(diag, "diagnostics")
    diag.close()
    # 5. the Processing Toolbox, filtered on MAESTRO
    toolbox = plugins["processing"].toolbox
    dock.hide()
    toolbox.show()
    toolbox.raise_()
    main.resizeDocks([toolbox], [420], Qt.Orientation.Horizontal)
    toolbox.searchBox.setText("maestro")
    yield 1500
    save(toolbox, "toolbox")
    # 6. the segment dialog
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().createAlgorithmById("maestro:segment")
    dialog = AlgorithmDialog(alg, parent=main)
    dialog.resize(1100, 820)
    dialog.show()
    yield 2000
    save(dialog, "segment-dialog")
    dialog.close()
    # 7. the graphical model in the Model Designer
    from processing.modeler.ModelerDialog import ModelerDialog
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    model.fromFile(os.path.join(ROOT, "resources", "models", "maestro_landcover_areas.model3"))
    designer = ModelerDialog.create(model)
    designer.resize(1500, 950)
    designer.show()
    yield 2500
    save(designer, "graphical-model")
    designer.close()


def train_steps(dock, inputs):
    """Train on labels from the reference map, map with the new model, then a similarity
    map from a click; saves dock-train.png and dock-similarity.png."""
    import importlib.util

    from qgis.core import QgsPointXY, QgsVectorLayer

    spec = importlib.util.spec_from_file_location(
        "own_classes_labels", os.path.join(ROOT, "scripts", "own_classes_labels.py"))
    labels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(labels)
    gpkg = os.path.join(os.path.dirname(INPUTS), "my-labels.gpkg")
    labels.write(gpkg, seed=0, per_class=150)
    project = QgsProject.instance()
    layers = []
    for name in ("polygons", "points"):
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", f"my {name}", "ogr")
        outline(layer)
        project.addMapLayer(layer)
        layers.append(layer)
    panel = dock.train_panel
    panel.setCollapsed(False)
    panel.set_label_layers(layers)
    panel.name_edit.setText("slovenia-west-classes")
    panel.model_output.setFilePath(os.path.join(os.path.dirname(INPUTS),
                                                "slovenia-west-classes.onnx"))
    panel.folds_spin.setValue(3)
    done = []
    dock.training_finished.connect(lambda ok, payload: done.append((ok, payload)))
    dock.train()
    yield 1500
    dock.scroll.ensureWidgetVisible(panel.train_button)
    yield 500
    save(main_window(), "dock-training")
    while not done:
        yield 500
    if not done[0][0]:
        print("MAESTRO screenshot: training failed:", done[0][1])
        return
    ran = []
    dock.run_finished.connect(lambda ok, payload: ran.append((ok, payload)))
    dock.output_widget.setFilePath(os.path.join(os.path.dirname(INPUTS), "my-classes.tif"))
    dock.confidence_check.setChecked(False)
    dock.run()
    while not ran:
        yield 500
    if ran[0][0]:
        layer = project.mapLayer(ran[0][1])
        iface.setActiveLayer(layer)
        for other in layers:  # the labels stay drawn on top of the new map
            node = project.layerTreeRoot().findLayer(other.id())
            project.layerTreeRoot().insertChildNode(0, node.clone())
            node.parent().removeChildNode(node)
    dock.scroll.verticalScrollBar().setValue(dock.scroll.verticalScrollBar().maximum())
    yield 3000
    save(main_window(), "dock-train")
    # a similarity map from a click in the middle of the scene
    ended = []
    dock.similarity_finished.connect(lambda ok, payload: ended.append((ok, payload)))
    dock.similarity_button.setChecked(True)
    ext = project.mapLayer(dock.modality_inputs["S2"].layer_ids()[0]).extent()
    dock.similarity_at(QgsPointXY(ext.xMinimum() + 0.35 * ext.width(),
                                  ext.yMinimum() + 0.55 * ext.height()),
                       iface.mapCanvas().mapSettings().destinationCrs())
    while not ended:
        yield 500
    if not ended[0][0]:
        print("MAESTRO screenshot: similarity failed:", ended[0][1])
    dock.scroll.verticalScrollBar().setValue(0)
    yield 3000
    save(main_window(), "dock-similarity")
    dock.similarity_button.setChecked(False)


def outline(layer):
    """Labels drawn as an analyst sees them on the map: black outlines, white points."""
    from qgis.core import Qgis, QgsFillSymbol, QgsMarkerSymbol

    if layer.geometryType() == Qgis.GeometryType.Polygon:
        symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "black",
                                             "outline_width": "0.5"})
    else:
        symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": "white",
                                               "outline_color": "black", "size": "1.6"})
    layer.renderer().setSymbol(symbol)


def main_window():
    return iface.mainWindow()


def tick(gen):
    try:
        delay = next(gen)
    except StopIteration:
        finish()
        return
    except Exception:  # noqa: BLE001 (print, then quit: never hang the script)
        traceback.print_exc()
        finish()
        return
    QTimer.singleShot(delay, lambda: tick(gen))


def finish():
    with open(os.environ["MAESTRO_SHOT_LIST"], "w", encoding="utf-8") as fh:
        fh.write("\n".join(STATE["saved"]) + "\n")
    os._exit(0)  # no "save project?" prompt


QTimer.singleShot(4000, lambda: tick(steps()))
