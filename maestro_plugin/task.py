"""The dock's background run: a QgsTask calling ``engine.api.run_model``.

``run()`` executes in a worker thread and touches no widget or project: it calls the
engine, maps progress/cancel to the task, computes the class areas of a land-cover map,
and keeps the report or the error text. ``finished()`` runs in the main thread: it loads
and styles the result (land cover on top of the Layers panel, confidence just below it and
unchecked) and emits ``succeeded(layer_id)`` or ``failed(message)``. No exception leaves
either method (an exception escaping a QgsTask would reach QGIS's event loop).
"""
from __future__ import annotations

import traceback

from qgis.core import Qgis, QgsMessageLog, QgsProject, QgsRasterLayer, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from engine.tasks import get_task

from .styling import apply_confidence_style, apply_land_cover_style
from .widgets import OUTPUT_PROPERTY

LOG_TAG = "MAESTRO"


def short_model_name(name: str) -> str:
    """``maestro-tiny-slovenia-lulc`` -> ``tiny-slovenia-lulc`` (the prefix says nothing in
    a Layers panel where every MAESTRO layer has it)."""
    for prefix in ("maestro-", "maestro_"):
        if name.lower().startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def date_range(dates) -> str:
    """``['2015-07-11', '2015-09-09']`` -> ``2015-07-11…09-09`` (same year),
    ``2015-07-11…2016-01-03`` otherwise, the date alone for one date, '' for none."""
    dates = sorted(d[:10] for d in dates or ())
    if not dates:
        return ""
    first, last = dates[0], dates[-1]
    if first == last:
        return first
    return f"{first}…{last[5:] if first[:4] == last[:4] else last}"


def result_names(meta, dates) -> tuple[str, str]:
    """(land-cover layer name, confidence layer name): short, and distinct from their first
    words on (the Layers panel cuts long names)."""
    model = short_model_name(meta.name)
    span = date_range(dates)
    main = " ".join(w for w in (model, get_task(meta.task).layer_word, span) if w)
    return main, f"confidence {model} {span}".strip()


class MaestroRunTask(QgsTask):
    """One model run.

    Args:
        model_path: ONNX file.
        meta: its ``ModelMetadata`` (read by the dock before starting).
        inputs: modality name -> list of ``maestro_plugin.inputs.LayerInput``.
        output_path: GeoTIFF to write.
        options: ``engine.api.RunOptions``.
        layer_name: name of the layer added (default: model and date range).
        project: where the layer goes (default: the current project).
    """

    succeeded = pyqtSignal(str)   # id of the layer added
    failed = pyqtSignal(str)      # the engine's message (or "cancelled")

    def __init__(self, model_path, meta, inputs, output_path, options, layer_name="",
                 project=None):
        super().__init__(f"MAESTRO {meta.task}: {meta.name}", QgsTask.Flag.CanCancel)
        self.model_path = model_path
        self.meta = meta
        self.inputs = inputs
        self.output_path = output_path
        self.options = options
        self.layer_name = layer_name
        self.project = project
        self.report = None
        self.areas = None          # list of areas.ClassArea for a land-cover map
        self.error = ""
        self.cancelled = False
        self.log_lines: list[str] = []
        self.layer_ids: list[str] = []

    # worker thread
    def run(self):
        try:
            from engine.api import run_model

            from .inputs import to_engine_inputs

            self.report = run_model(
                self.model_path, to_engine_inputs(self.inputs), self.output_path, self.options,
                progress=lambda fraction, message="": self.setProgress(
                    100.0 * max(0.0, min(1.0, float(fraction)))),
                is_cancelled=self.isCanceled, log=self.log_lines.append)
        except Exception as exc:  # noqa: BLE001 (reported by finished(), never raised)
            self.cancelled = self._is_cancel(exc)
            self.error = self._message(exc)
            return False
        if get_task(self.meta.task).layout(self.meta).class_ids and self.meta.classes:
            try:
                from .areas import class_areas

                self.areas = class_areas(self.report.output_path, self.meta.classes)
            except Exception as exc:  # noqa: BLE001 (no areas: the map is still there)
                self.log_lines.append(f"class areas not computed: {exc}")
        return True

    def _is_cancel(self, exc) -> bool:
        try:
            from engine.errors import CancelledError
        except Exception:  # noqa: BLE001
            return self.isCanceled()
        return isinstance(exc, CancelledError) or self.isCanceled()

    @staticmethod
    def _message(exc) -> str:
        try:
            from engine.errors import MaestroError
        except Exception:  # noqa: BLE001
            MaestroError = ()  # noqa: N806
        if MaestroError and isinstance(exc, MaestroError):
            return str(exc)
        if isinstance(exc, ImportError):
            from .deps import INSTALL_MENU_PATH

            return (f"A Python package MAESTRO needs is missing ({exc}): use "
                    f"{INSTALL_MENU_PATH}.")
        QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.MessageLevel.Critical)
        return f"the run stopped unexpectedly: {exc} (details in the MAESTRO log panel)"

    # main thread
    def finished(self, result):
        try:
            if result and self.report is not None:
                from .diagnostics import record_run

                record_run(self.report, self.model_path)
                self._add_layers()
                self.succeeded.emit(self.layer_ids[0] if self.layer_ids else "")
            else:
                if self.isCanceled():
                    self.cancelled = True
                message = self.error or ("cancelled: no output was written" if self.cancelled
                                         else "the run failed")
                QgsMessageLog.logMessage(message, LOG_TAG, Qgis.MessageLevel.Info
                                         if self.cancelled else Qgis.MessageLevel.Warning)
                self.failed.emit(message)
        except Exception as exc:  # noqa: BLE001 (never into QGIS's event loop)
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.MessageLevel.Critical)
            try:
                self.failed.emit(f"the result could not be added to the map: {exc}")
            except Exception:  # noqa: BLE001
                pass

    def _add_layers(self):
        project = self.project or QgsProject.instance()
        dates = self.report.dates.get(self.meta.reference_modality) or next(
            iter(self.report.dates.values()), [])
        main_name, conf_name = result_names(self.meta, dates)
        layer = QgsRasterLayer(self.report.output_path, self.layer_name or main_name, "gdal")
        if not layer.isValid():
            raise RuntimeError(f"the output {self.report.output_path} cannot be opened")
        layer.setCustomProperty(OUTPUT_PROPERTY, self.meta.task)
        class_ids = get_task(self.meta.task).layout(self.meta).class_ids
        if class_ids and self.meta.classes:
            apply_land_cover_style(layer, self.meta.classes)
        root = project.layerTreeRoot()
        project.addMapLayer(layer, False)
        root.insertLayer(0, layer)           # on top of the Layers panel
        self.layer_ids.append(layer.id())
        if self.report.confidence_path:
            conf = QgsRasterLayer(self.report.confidence_path, conf_name, "gdal")
            if conf.isValid():
                conf.setCustomProperty(OUTPUT_PROPERTY, "confidence")
                apply_confidence_style(conf)
                project.addMapLayer(conf, False)
                node = root.insertLayer(1, conf)  # just below the map, not drawn
                node.setItemVisibilityChecked(False)
                self.layer_ids.append(conf.id())
