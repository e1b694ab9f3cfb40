"""The MAESTRO dock panel: choose a model, the layers per modality (ordered, dated), the
output; run in a background QgsTask; the styled result is added to the project.

Every slot is wrapped by :func:`guarded`: an exception is shown in the message bar and
logged, never raised into QGIS's event loop.
"""
from __future__ import annotations

import functools
import html
import os
import tempfile
import traceback

from qgis.core import Qgis, QgsMessageLog, QgsProject
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget, QgsFileWidget, QgsMessageBar
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                                 QPushButton, QScrollArea, QSpinBox, QTextBrowser, QVBoxLayout,
                                 QWidget)

from . import deps
from .algorithms.base import DEFAULT_MODEL
from .inputs import PluginInputError, match_modalities
from .widgets import ModalityInput

LOG_TAG = "MAESTRO"


def guarded(method):
    """Slot decorator: exceptions go to the message bar and the log, not to Qt."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (see module docstring)
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            self.show_error(f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, (PluginInputError, ValueError)) else str(exc))
            return None
    return wrapper


def model_card_html(meta, path: str) -> str:
    """Task, modalities, classes (with their colours) and card (description, provenance)."""
    esc = html.escape
    parts = [f"<b>{esc(meta.name)}</b> {esc(meta.version)}<br>",
             f"Task: <b>{esc(meta.task)}</b>{' (multilabel)' if meta.multilabel else ''}; "
             f"output grid: {esc(meta.reference_modality.upper())}<br>"]
    if meta.description:
        parts.append(f"<i>{esc(meta.description)}</i><br>")
    parts.append("Modalities:<ul>")
    for m in meta.modalities:
        dates = (f"{m.min_dates}" if m.min_dates == m.max_dates
                 else f"{m.min_dates}-{m.max_dates}")
        parts.append(f"<li>{esc(m.name.upper())}: {len(m.bands)} "
                     f"band{'s' if len(m.bands) != 1 else ''} "
                     f"({esc(', '.join(m.bands))}), {m.gsd_m:g} m, dates {dates}</li>")
    parts.append("</ul>")
    if meta.classes:
        parts.append("Classes:<br>")
        parts.extend(f"<span style='background:{c.color}'>&nbsp;&nbsp;&nbsp;&nbsp;</span> "
                     f"{c.id}: {esc(c.name)}<br>" for c in meta.classes)
    if meta.embedding_dim:
        parts.append(f"Embedding dimension: {meta.embedding_dim}<br>")
    prov = dict(meta.provenance)
    parts.append("Card:<ul>")
    for key in ("training_data", "licence", "metrics", "created", "code_version"):
        if key in prov:
            parts.append(f"<li>{esc(key)}: {esc(str(prov[key]))}</li>")
    parts.append(f"</ul><small>{esc(path)}</small>")
    return "".join(parts)


class MaestroDock(QgsDockWidget):
    """The panel. Test hooks: ``set_model``, ``modality_inputs``, ``output_widget``,
    ``run_button``, ``cancel_button``, ``task``, ``progress_bar``."""

    run_finished = pyqtSignal(bool, str)   # ok, layer id or error message

    def __init__(self, iface=None, parent=None):
        super().__init__("MAESTRO land cover", parent)
        self.setObjectName("MaestroDock")
        self.iface = iface
        self.meta = None
        self.model_path = ""
        self.task = None
        self.modality_inputs: dict[str, ModalityInput] = {}
        self._dialogs = []
        self.last_message = ""
        self.last_report = None  # engine RunReport of the last successful run

        body = QWidget(self)
        self.message_bar = QgsMessageBar(body)
        self.deps_label = QLabel(body)
        self.deps_label.setWordWrap(True)
        self.install_button = QPushButton("Install dependencies…", body)
        self.diagnostics_button = QPushButton("Diagnostics…", body)
        self.model_widget = QgsFileWidget(body)
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_info = QTextBrowser(body)
        self.model_info.setMinimumHeight(120)
        self.modalities_box = QWidget(body)
        self.modalities_layout = QVBoxLayout(self.modalities_box)
        self.modalities_layout.setContentsMargins(0, 0, 0, 0)
        self.output_widget = QgsFileWidget(body)
        self.output_widget.setStorageMode(QgsFileWidget.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif)")
        self.output_widget.lineEdit().setPlaceholderText("[temporary file]")
        self.confidence_check = QCheckBox("Also write the confidence raster", body)
        self.confidence_check.setToolTip("Probability of the chosen class (0-1), beside the "
                                         "output as <name>_confidence.tif (segmentation)")
        advanced = QgsCollapsibleGroupBox("Advanced", body)
        advanced.setCollapsed(True)
        self.overlap_spin = QSpinBox(advanced)
        self.overlap_spin.setRange(0, 75)
        self.overlap_spin.setValue(25)
        self.overlap_spin.setSuffix(" %")
        self.batch_spin = QSpinBox(advanced)
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setValue(8)
        self.device_combo = QComboBox(advanced)
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        form = QFormLayout(advanced)
        form.addRow("Tile overlap", self.overlap_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Device", self.device_combo)
        self.progress_bar = QProgressBar(body)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.run_button = QPushButton("Run", body)
        self.cancel_button = QPushButton("Cancel", body)
        self.cancel_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.install_button)
        top.addWidget(self.diagnostics_button)
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress_bar, 1)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(body)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.deps_label)
        layout.addLayout(top)
        layout.addWidget(QLabel("Model", body))
        layout.addWidget(self.model_widget)
        layout.addWidget(self.model_info)
        layout.addWidget(QLabel("Inputs per modality", body))
        layout.addWidget(self.modalities_box)
        layout.addWidget(QLabel("Output (GeoTIFF)", body))
        layout.addWidget(self.output_widget)
        layout.addWidget(self.confidence_check)
        layout.addWidget(advanced)
        layout.addLayout(run_row)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.model_widget.fileChanged.connect(self.set_model)
        # lambdas: clicked(bool) would pass its argument to the methods
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.install_button.clicked.connect(lambda: self.open_installer())
        self.diagnostics_button.clicked.connect(lambda: self.open_diagnostics())
        self.refresh_dependencies()
        if os.path.isfile(DEFAULT_MODEL):
            self.model_widget.setFilePath(DEFAULT_MODEL)

    # ------------------------------------------------------------- messages
    def _bar(self):
        if self.iface is not None:
            try:
                return self.iface.messageBar()
            except Exception:  # noqa: BLE001 (an iface without a bar: use ours)
                pass
        return self.message_bar

    def show_error(self, message: str) -> None:
        self.last_message = message
        self._bar().pushMessage("MAESTRO", message, Qgis.Critical, 0)

    def show_info(self, message: str, level=Qgis.Success) -> None:
        self.last_message = message
        self._bar().pushMessage("MAESTRO", message, level, 8)

    @guarded
    def refresh_dependencies(self) -> list:
        missing = deps.missing_dependencies()
        if missing:
            self.deps_label.setText("<span style='color:#b00020'>" + html.escape(
                deps.missing_message(missing)) + "</span>")
        self.deps_label.setVisible(bool(missing))
        self.run_button.setEnabled(not missing and self.task is None)
        return missing

    # ------------------------------------------------------------- model
    @guarded
    def set_model(self, path: str) -> None:
        """Read the model's metadata and rebuild the modality inputs."""
        if self.model_widget.filePath() != path:
            self.model_widget.blockSignals(True)
            self.model_widget.setFilePath(path)
            self.model_widget.blockSignals(False)
        self.meta, self.model_path = None, ""
        self._clear_modalities()
        if not path:
            self.model_info.setHtml("")
            return
        try:
            from engine.contract import read_model_metadata

            meta = read_model_metadata(path)
        except Exception as exc:  # noqa: BLE001 (shown where the model info would be)
            self.model_info.setHtml(f"<span style='color:#b00020'>{html.escape(str(exc))}</span>")
            raise
        self.meta, self.model_path = meta, path
        self.model_info.setHtml(model_card_html(meta, path))
        for spec in meta.modalities:
            widget = ModalityInput(spec, self.modalities_box)
            self.modality_inputs[widget.name] = widget
            self.modalities_layout.addWidget(widget)

    def _clear_modalities(self):
        for widget in self.modality_inputs.values():
            self.modalities_layout.removeWidget(widget)
            widget.deleteLater()
        self.modality_inputs = {}

    # ------------------------------------------------------------- run
    def output_path(self) -> str:
        path = self.output_widget.filePath().strip()
        if not path:
            folder = tempfile.mkdtemp(prefix="maestro-")
            path = os.path.join(folder, f"{self.meta.name}-{self.meta.task}.tif")
        elif not path.lower().endswith((".tif", ".tiff")):
            path += ".tif"
        return path

    @guarded
    def run(self) -> bool:
        """Start the task; returns False (with a message) when something is not set."""
        if self.task is not None:
            return False
        if self.refresh_dependencies():
            self.show_error(deps.missing_message(deps.missing_dependencies()))
            return False
        if self.meta is None:
            self.show_error("choose a MAESTRO model (.onnx) first")
            return False
        from engine.api import RunOptions

        from .task import MaestroRunTask

        # each row's date (read from the raster, possibly edited) travels in its LayerInput
        given = {name: w.layer_inputs() for name, w in self.modality_inputs.items()}
        inputs = match_modalities(self.meta, given)
        output = self.output_path()
        confidence = None
        if self.confidence_check.isChecked() and self.meta.task == "segmentation":
            confidence = os.path.splitext(output)[0] + "_confidence.tif"
        options = RunOptions(tile_overlap_pct=self.overlap_spin.value(),
                             batch_size=self.batch_spin.value(),
                             device=self.device_combo.currentText(),
                             confidence_path=confidence, expect_task=self.meta.task)
        task = MaestroRunTask(self.model_path, self.meta, inputs, output, options)
        task.progressChanged.connect(lambda value: self.progress_bar.setValue(int(value)))
        task.succeeded.connect(self._succeeded)
        task.failed.connect(self._failed)
        self.task = task  # the Python object must outlive the run
        self.progress_bar.setValue(0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        from qgis.core import QgsApplication

        QgsApplication.taskManager().addTask(task)
        return True

    @guarded
    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _end(self):
        self.task = None
        self.cancel_button.setEnabled(False)
        self.refresh_dependencies()

    @guarded
    def _succeeded(self, layer_id: str) -> None:
        task = self.task
        self._end()
        self.progress_bar.setValue(100)
        layer = QgsProject.instance().mapLayer(layer_id)
        where = layer.source() if layer else ""
        self.last_report = task.report if task else None
        provider = task.report.provider if task and task.report else ""
        self.show_info(f"done on {provider}: {where}")
        self.run_finished.emit(True, layer_id)

    @guarded
    def _failed(self, message: str) -> None:
        self._end()
        self.progress_bar.setValue(0)
        self.show_error(message)
        self.run_finished.emit(False, message)

    # ------------------------------------------------------------- dialogs
    @guarded
    def open_installer(self):
        from .installer_dialog import InstallDependenciesDialog

        dialog = InstallDependenciesDialog(parent=self)
        dialog.finished_install.connect(lambda ok: self.refresh_dependencies())
        self._dialogs.append(dialog)
        dialog.show()
        return dialog

    @guarded
    def open_diagnostics(self):
        from .diagnostics_dialog import DiagnosticsDialog

        dialog = DiagnosticsDialog(self)
        self._dialogs.append(dialog)
        dialog.show()
        return dialog
