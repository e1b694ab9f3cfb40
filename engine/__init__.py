"""MAESTRO inference engine: onnxruntime + numpy + rasterio/GDAL.

Imports neither QGIS nor torch. Heavy dependencies (onnxruntime, rasterio) are imported
inside the functions that need them, so ``engine.contract`` and ``engine.errors`` load
anywhere.
"""
