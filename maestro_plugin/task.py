"""The dock's background run: a QgsTask calling ``engine.api.run_model``.

``run()`` executes in a worker thread and touches no widget or project: it calls the
engine, maps progress/cancel to the task, and keeps the report or the error text.
``finished()`` runs in the main thread: it loads and styles the result and emits
``succeeded(layer_id)`` or ``failed(message)``. No exception leaves either method
(an exception escaping a QgsTask would reach QGIS's event loop).
"""
from __future__ import annotations

import traceback

from qgis.core import Qgis, QgsMessageLog, QgsProject, QgsRasterLayer, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .styling import apply_confidence_style, apply_land_cover_style

LOG_TAG = "MAESTRO"


class MaestroRunTask(QgsTask):
    """One model run.

    Args:
        model_path: ONNX file.
        meta: its ``ModelMetadata`` (read by the dock before starting).
        inputs: modality name -> list of ``maestro_plugin.inputs.LayerInput``.
        output_path: GeoTIFF to write.
        options: ``engine.api.RunOptions``.
        layer_name: name of the layer added to the project.
        project: where the layer goes (default: the current project).
    """

    succeeded = pyqtSignal(str)   # id of the layer added
    failed = pyqtSignal(str)      # the engine's message (or "cancelled")

    def __init__(self, model_path, meta, inputs, output_path, options, layer_name="",
                 project=None):
        super().__init__(f"MAESTRO {meta.task}: {meta.name}", QgsTask.CanCancel)
        self.model_path = model_path
        self.meta = meta
        self.inputs = inputs
        self.output_path = output_path
        self.options = options
        self.layer_name = layer_name or f"{meta.name} {meta.task}"
        self.project = project
        self.report = None
        self.error = ""
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
            return True
        except Exception as exc:  # noqa: BLE001 (reported by finished(), never raised)
            self.error = self._message(exc)
            return False

    @staticmethod
    def _message(exc) -> str:
        try:
            from engine.errors import MaestroError
        except Exception:  # noqa: BLE001
            MaestroError = ()  # noqa: N806
        if MaestroError and isinstance(exc, MaestroError):
            return str(exc)
        if isinstance(exc, ImportError):
            return (f"A Python package MAESTRO needs is missing: {exc}. Use 'Install "
                    "dependencies' in the MAESTRO panel.")
        QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
        return f"{type(exc).__name__}: {exc}"

    # main thread
    def finished(self, result):
        try:
            if result and self.report is not None:
                from .diagnostics import record_run

                record_run(self.report, self.model_path)
                self._add_layers()
                self.succeeded.emit(self.layer_ids[0] if self.layer_ids else "")
            else:
                message = self.error or ("cancelled: no output was written" if self.isCanceled()
                                         else "the run failed")
                QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Warning)
                self.failed.emit(message)
        except Exception as exc:  # noqa: BLE001 (never into QGIS's event loop)
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            try:
                self.failed.emit(f"{type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001
                pass

    def _add_layers(self):
        project = self.project or QgsProject.instance()
        layer = QgsRasterLayer(self.report.output_path, self.layer_name, "gdal")
        if not layer.isValid():
            raise RuntimeError(f"the output {self.report.output_path} cannot be opened")
        class_ids = self.meta.task == "segmentation" or (
            self.meta.task == "classification" and not self.meta.multilabel)
        if class_ids and self.meta.classes:
            apply_land_cover_style(layer, self.meta.classes)
        project.addMapLayer(layer)
        self.layer_ids.append(layer.id())
        if self.report.confidence_path:
            conf = QgsRasterLayer(self.report.confidence_path, f"{self.layer_name} confidence",
                                  "gdal")
            if conf.isValid():
                apply_confidence_style(conf)
                project.addMapLayer(conf)
                self.layer_ids.append(conf.id())
