"""The ``maestro`` Processing provider: a list of algorithm classes, nothing more."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class MaestroProvider(QgsProcessingProvider):
    def id(self):
        return "maestro"

    def name(self):
        return "MAESTRO"

    def longName(self):
        return "MAESTRO land cover (multimodal time series, ONNX)"

    def icon(self):
        return QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "maestro.svg"))

    def supportedOutputRasterLayerExtensions(self):
        # The engine writes GeoTIFF (COG) only.
        return ["tif"]

    def loadAlgorithms(self):
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
