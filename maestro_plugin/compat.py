"""Names that moved between Qt5 and Qt6, imported once for both.

``QAction`` lives in QtWidgets under Qt5 and in QtGui under Qt6; QGIS 3.40's ``qgis.PyQt``
re-exports it from QtGui too (checked in tests/plugin/test_dock.py), but older 3.x builds
only from QtWidgets.
"""
try:
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5 builds whose qgis.PyQt.QtGui does not re-export it
    from qgis.PyQt.QtWidgets import QAction

__all__ = ["QAction"]
