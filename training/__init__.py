"""MAESTRO training: PyTorch + Lightning model, pretraining, fine-tuning, ONNX export.

Never imported by the QGIS plugin; it imports ``engine.contract`` to write the metadata
the engine reads.
"""
