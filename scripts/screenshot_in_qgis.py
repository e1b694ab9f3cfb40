"""Run inside a real QGIS window (qgis --code, see scripts/screenshot-dock.sh): open the
MAESTRO dock, choose the model and layers, run, then grab the screen and quit."""
import json
import os
import subprocess

from qgis.core import QgsContrastEnhancement, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.utils import iface, loadPlugin, plugins, startPlugin

INPUTS = os.environ["MAESTRO_SHOT_INPUTS"]
OUT = os.environ["MAESTRO_SHOT_OUT"]
STATE = {}


def rgb(layer):
    """True colour (B04, B03, B02 = bands 3, 2, 1 of the tiny model's S2) with a stretch."""
    renderer = layer.renderer()
    if layer.bandCount() >= 3 and hasattr(renderer, "setRedBand"):
        renderer.setRedBand(3)
        renderer.setGreenBand(2)
        renderer.setBlueBand(1)
        layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum)


def setup():
    with open(INPUTS, encoding="utf-8") as fh:
        inputs = json.load(fh)
    # no window manager under Xvfb: size the window and the dock by hand
    iface.mainWindow().setGeometry(0, 0, 1600, 1000)
    if "maestro" not in plugins:
        # QGIS older than metadata.txt's qgisMinimumVersion skips the plugin at start-up
        # (this machine's Debian QGIS 3.22): start it by hand for the picture.
        loadPlugin("maestro")
        startPlugin("maestro")
    plugin = plugins["maestro"]
    dock = plugin.dock
    dock.show()
    dock.raise_()
    iface.mainWindow().resizeDocks([dock], [560], Qt.Horizontal)
    dock.set_model(inputs["model"])
    for name, paths in inputs["layers"].items():
        for path in paths:
            layer = QgsRasterLayer(path, os.path.splitext(os.path.basename(path))[0], "gdal")
            rgb(layer)
            QgsProject.instance().addMapLayer(layer)
            dock.modality_inputs[name].add_layer(layer)
    dock.output_widget.setFilePath(os.path.join(os.path.dirname(INPUTS), "land-cover.tif"))
    dock.run_finished.connect(finished)
    STATE["dock"] = dock
    dock.run()


def finished(ok, payload):
    if ok:
        layer = QgsProject.instance().mapLayer(payload)
        layer.setOpacity(0.6)  # the Sentinel-2 image shows through        iface.setActiveLayer(layer)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refresh()
    else:
        print("MAESTRO screenshot: run failed:", payload)
    QTimer.singleShot(4000, shoot)


def shoot():
    subprocess.run(["import", "-window", "root", OUT], check=False)
    os._exit(0)  # no "save project?" prompt


QTimer.singleShot(4000, setup)
