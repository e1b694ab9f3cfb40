"""Write resources/styles/confidence.qml: a 0-1 ramp for confidence rasters (max class
probability), made with QGIS's own renderer classes so that the QML matches QGIS's format.

Run: bash scripts/with-env.sh .venv/bin/python scripts/make-styles.py
"""
import os
import tempfile

import numpy as np
import rasterio
from qgis.core import (QgsApplication, QgsColorRampShader, QgsRasterLayer, QgsRasterShader,
                       QgsSingleBandPseudoColorRenderer, QgsStyle)
from rasterio.transform import from_origin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "styles", "confidence.qml")


def main():
    path = os.path.join(tempfile.mkdtemp(), "confidence.tif")
    with rasterio.open(path, "w", driver="GTiff", width=2, height=1, count=1, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(0, 10, 10, 10), nodata=-1) as dst:
        dst.write(np.array([[[0.0, 1.0]]], dtype="float32"))
    layer = QgsRasterLayer(path, "confidence", "gdal")
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
    shader_fn = QgsColorRampShader(0.0, 1.0, ramp, QgsColorRampShader.Interpolated)
    shader_fn.classifyColorRamp(5, -1)
    shader = QgsRasterShader(0.0, 1.0)
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    message, ok = layer.saveNamedStyle(OUT)
    assert ok, message
    print(OUT)


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    main()
    app.exitQgis()
