"""Styles for MAESTRO outputs: land-cover maps get a paletted renderer with the model's
class names and colours; confidence rasters a 0-1 ramp (resources/styles/confidence.qml)."""
from __future__ import annotations

import os

from qgis.core import (QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface,
                       QgsRasterLayer)
from qgis.PyQt.QtGui import QColor

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIDENCE_QML = os.path.join(PLUGIN_DIR, "resources", "styles", "confidence.qml")


def land_cover_renderer(layer: QgsRasterLayer, classes) -> QgsPalettedRasterRenderer:
    """Paletted renderer on band 1: one entry per class (value = class id, label = name)."""
    entries = [QgsPalettedRasterRenderer.Class(int(c.id), QColor(c.color), c.name)
               for c in classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries)


def apply_land_cover_style(layer: QgsRasterLayer, classes) -> None:
    """Style a land-cover (class id) raster with the model's classes."""
    layer.setRenderer(land_cover_renderer(layer, classes))
    layer.triggerRepaint()


def apply_confidence_style(layer: QgsRasterLayer) -> None:
    """Style a confidence raster (max class probability, 0..1)."""
    layer.loadNamedStyle(CONFIDENCE_QML)
    layer.triggerRepaint()


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Applied by Processing to an output when it is loaded into the project.

    Processing keeps only a C++ pointer to a post-processor: the Python object is kept
    alive in :data:`_KEEP` (one per styled output; a few bytes each).
    """

    def __init__(self, classes=None, confidence=False):
        super().__init__()
        self.classes = tuple(classes or ())
        self.confidence = confidence

    def postProcessLayer(self, layer, context, feedback):
        try:
            if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
                return
            if self.confidence:
                apply_confidence_style(layer)
            elif self.classes:
                apply_land_cover_style(layer, self.classes)
        except Exception as exc:  # noqa: BLE001 (a style problem must not fail the run)
            feedback.reportError(f"MAESTRO: could not style {layer.name()}: {exc}")


_KEEP: list[LayerStyler] = []


def style_on_load(context, output_value: str, classes=None, confidence=False) -> None:
    """Attach a styler to a destination that Processing will load on completion."""
    if not output_value or not context.willLoadLayerOnCompletion(output_value):
        return
    styler = LayerStyler(classes, confidence)
    _KEEP.append(styler)
    context.layerToLoadOnCompletionDetails(output_value).setPostProcessor(styler)
