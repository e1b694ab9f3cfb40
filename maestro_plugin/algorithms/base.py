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

    def groupId(self):
        return ""

    def icon(self):
        return QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "maestro.svg"))

    def createInstance(self):
        return type(self)()

    def __init_subclass__(cls, **kwargs):
        """Every subclass's processAlgorithm runs under :func:`_one_line_errors`."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("processAlgorithm")
        if own is not None and not getattr(own, "_maestro_guarded", False):
            cls.processAlgorithm = _one_line_errors(own)

    def engine_call(self, func, *args, **kwargs):
        """Call into the engine; its errors (and a missing onnxruntime) become
        QgsProcessingException with the engine's message on one line; an unexpected
        error becomes one line too, its traceback going to the debug log only."""
        try:
            from engine.errors import MaestroError  # noqa: F401
        except ImportError as exc:  # numpy missing: nothing of the engine can run
            raise QgsProcessingException(f"MAESTRO engine cannot load: {exc}") from None
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (every error: one clear line)
            raise as_processing_error(exc) from None


def engine_log(feedback):
    """The engine's ``log`` callback for a Processing run: its ``warning:`` lines (a map that
    may not be what the analyst expects: another product level, a partial extent, nodata
    shares...) as Processing warnings, shown highlighted in the log; the rest as information."""
    def log(line: str) -> None:
        if line.startswith("warning:"):
            feedback.pushWarning(line[len("warning:"):].strip())   # QGIS shows "WARNING:" itself
        else:
            feedback.pushInfo(line)
    return log


def debug_log_path() -> str:
    """The file that receives the tracebacks of unexpected errors (also the CLI's)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "maestro-engine-debug.log")


def _write_traceback(exc: BaseException) -> str:
    """Append ``exc``'s traceback to :func:`debug_log_path`; returns the path ('' on failure)."""
    import datetime
    import traceback

    path = debug_log_path()
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"--- {datetime.datetime.now().isoformat(timespec='seconds')} "
                    f"pid {os.getpid()} (QGIS)\n")
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return path
    except OSError:
        return ""


def _one_line(text) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def as_processing_error(exc: BaseException) -> QgsProcessingException:
    """The QgsProcessingException to raise for ``exc``: the engine's message (one line) for
    its own errors, the install hint for a missing package, and for anything else one line
    naming the error, its traceback appended to :func:`debug_log_path` (never shown in the
    Processing log)."""
    if isinstance(exc, QgsProcessingException):
        return exc
    try:
        from engine.errors import MaestroError
    except ImportError:
        MaestroError = ()  # noqa: N806
    if MaestroError and isinstance(exc, MaestroError):
        return QgsProcessingException(_one_line(exc))
    if isinstance(exc, ImportError):
        return QgsProcessingException(
            f"A Python package MAESTRO needs is missing: {_one_line(exc)}. "
            "Install it with Raster > MAESTRO land cover > Install dependencies… "
            "(or the button in the MAESTRO panel).")
    where = _write_traceback(exc)
    return QgsProcessingException(
        f"MAESTRO failed unexpectedly: {type(exc).__name__}: {_one_line(exc)}"
        + (f" (details for a bug report in {where})" if where else ""))


def _one_line_errors(process):
    """Wrap a processAlgorithm: any error leaves it as one QgsProcessingException line."""
    import functools

    @functools.wraps(process)
    def guarded(self, parameters, context, feedback):
        try:
            return process(self, parameters, context, feedback)
        except QgsProcessingException as exc:
            raise QgsProcessingException(_one_line(exc.args[0] if exc.args else exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise as_processing_error(exc) from None

    guarded._maestro_guarded = True
    return guarded
