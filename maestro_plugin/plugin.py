"""The plugin object QGIS creates through ``classFactory``."""
from __future__ import annotations

from qgis.core import QgsApplication

from .provider import MaestroProvider


class MaestroPlugin:
    """Registers the Processing provider (in ``initProcessing``, so qgis_process sees it)
    and, with a GUI, the dock panel."""

    def __init__(self, iface):
        self.iface = iface
        self.provider: MaestroProvider | None = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        if self.provider is None:
            self.provider = MaestroProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
