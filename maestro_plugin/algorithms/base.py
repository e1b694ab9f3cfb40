"""What every MAESTRO algorithm shares: group, icon, and turning engine errors into
QgsProcessingException (a user error, shown as it is, never a traceback)."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL = os.path.join(PLUGIN_DIR, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")


class MaestroAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define name, displayName, initAlgorithm, processAlgorithm."""

    # No group: the algorithms sit directly under the provider "MAESTRO" in the Toolbox
    # (a group of the same name showed "MAESTRO > MAESTRO").
    def group(self):
        return ""

    def groupId(self):  # noqa: N802 (QGIS API name)
        return ""

    def icon(self):
        return QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "maestro.svg"))

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return type(self)()

    def engine_call(self, func, *args, **kwargs):
        """Call into the engine; its errors (and a missing onnxruntime) become
        QgsProcessingException with the engine's message."""
        try:
            from engine.errors import MaestroError
        except ImportError as exc:  # numpy missing: nothing of the engine can run
            raise QgsProcessingException(f"MAESTRO engine cannot load: {exc}") from exc
        try:
            return func(*args, **kwargs)
        except MaestroError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except ImportError as exc:
            raise QgsProcessingException(
                f"A Python package MAESTRO needs is missing: {exc}. "
                "Install it with Raster > MAESTRO land cover > Install dependencies… "
                "(or the button in the MAESTRO panel).") from exc
        except QgsProcessingException:
            raise
        except Exception as exc:  # noqa: BLE001 (an engine bug: a message, not a traceback)
            import traceback

            from qgis.core import Qgis, QgsMessageLog

            QgsMessageLog.logMessage(traceback.format_exc(), "MAESTRO", Qgis.MessageLevel.Critical)
            raise QgsProcessingException(
                f"MAESTRO engine failed unexpectedly ({type(exc).__name__}: {exc}); "
                "the traceback is in the MAESTRO log") from exc
