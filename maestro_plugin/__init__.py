"""The QGIS side of MAESTRO for QGIS: a thin shell over ``engine``.

Nothing here imports onnxruntime or the engine's heavy dependencies at import time, so
the plugin loads even when they are missing; the algorithms then say what to install.
"""
