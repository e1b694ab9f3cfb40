"""The plugin object QGIS creates through ``classFactory``."""
from __future__ import annotations

import os
import traceback

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from .deps import MENU_NAME, add_deps_dir_to_path
from .provider import MaestroProvider

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Raster > MAESTRO land cover (deps.INSTALL_MENU_PATH names the same place in messages)
MENU = f"&{MENU_NAME}"
TOOLBAR = "MAESTRO"


def _log_exception(where: str) -> None:
    QgsMessageLog.logMessage(f"{where}:\n{traceback.format_exc()}", "MAESTRO",
                             Qgis.MessageLevel.Critical)


class MaestroPlugin:
    """Registers the Processing provider (in ``initProcessing``, so qgis_process sees it)
    and, with a GUI, the dock panel, its menu entries and toolbar button.

    Nothing here raises into QGIS: failures are logged to the MAESTRO log tab.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider: MaestroProvider | None = None
        self.dock = None
        self.toolbar = None
        self.actions = []
        try:
            # Packages installed by "Install dependencies" (appended after QGIS's own).
            add_deps_dir_to_path()
        except Exception:  # noqa: BLE001
            _log_exception("MAESTRO: dependencies folder")

    def initProcessing(self):
        if self.provider is None:
            provider = MaestroProvider()
            # False when a provider "maestro" is already registered (a second plugin
            # instance): keep None so that unload() does not remove the other's.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider
            else:
                QgsMessageLog.logMessage("MAESTRO: a 'maestro' Processing provider is already "
                                         "registered", "MAESTRO", Qgis.MessageLevel.Warning)

    def initGui(self):
        self.initProcessing()
        if self.iface is None:
            return
        try:
            self._init_gui()
        except Exception:  # noqa: BLE001
            _log_exception("MAESTRO: initGui")

    def _init_gui(self):
        from qgis.PyQt.QtCore import Qt
        # QAction: QtGui under Qt6; QGIS 3.40's qgis.PyQt.QtGui re-exports it for Qt5 too
        from qgis.PyQt.QtGui import QAction, QIcon

        from .dock import MaestroDock

        icon = QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "maestro.svg"))
        main = self.iface.mainWindow()
        self.dock = MaestroDock(self.iface, main)
        main.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        panel = QAction(icon, "MAESTRO land cover panel", main)
        panel.setToolTip("MAESTRO land cover: show or hide the panel")
        panel.setCheckable(True)
        self.dock.setToggleVisibilityAction(panel)
        install = QAction("Install dependencies…", main)
        install.triggered.connect(lambda: self.dock.open_installer())
        diag = QAction("Diagnostics…", main)
        diag.triggered.connect(lambda: self.dock.open_diagnostics())
        for action in (panel, install, diag):
            self.iface.addPluginToRasterMenu(MENU, action)
        # the plugin's own toolbar: shown in a fresh profile (the Raster toolbar is hidden
        # there by default)
        self.toolbar = self.iface.addToolBar(TOOLBAR)
        self.toolbar.setObjectName("MaestroToolbar")
        self.toolbar.setToolTip("MAESTRO land cover")
        self.toolbar.addAction(panel)
        self.toolbar.setVisible(True)
        self.actions = [panel, install, diag]

    def unload(self):
        try:
            for action in self.actions:
                self.iface.removePluginRasterMenu(MENU, action)
            self.actions = []
            if self.toolbar is not None:
                self.toolbar.deleteLater()
                self.toolbar = None
            if self.dock is not None:
                self.dock.shutdown()
                self.iface.mainWindow().removeDockWidget(self.dock)
                self.dock.deleteLater()
                self.dock = None
        except Exception:  # noqa: BLE001
            _log_exception("MAESTRO: unload")
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
