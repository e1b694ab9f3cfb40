"""QGIS plugin entry point of MAESTRO for QGIS.

The plugin folder holds three layers as top-level packages (``engine``, ``maestro_plugin``,
``training``); QGIS imports this folder as a package, so the folder itself is put on
``sys.path`` to make ``engine`` importable under one name in QGIS, in qgis_process, in
tests and on the command line (``python -m engine``).
"""
import os
import sys

_PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
if _PLUGIN_DIR not in sys.path:
    sys.path.insert(0, _PLUGIN_DIR)


def classFactory(iface):
    """Return the plugin object. ``iface`` is None under qgis_process."""
    from maestro_plugin.plugin import MaestroPlugin

    return MaestroPlugin(iface)
