"""The MAESTRO dock panel: choose a model (empty = the bundled default), the layers per
modality (sorted by date), the output; *Run* (or *Preview* on the visible map) in a
background QgsTask; the styled result is added on top of the Layers panel and the class
areas are listed.

The model's card (modalities, bands, classes) is read from the ONNX file without
onnxruntime (:mod:`maestro_plugin.model_file`), so a new user sees what the model needs
before installing anything; a missing onnxruntime is one line in the panel, never a bar.

Every slot is wrapped by :func:`guarded`: an exception is shown in the message bar in
plain words (the traceback goes to the MAESTRO log), never raised into QGIS's event loop.
"""
from __future__ import annotations

import functools
import html
import os
import traceback

from qgis.core import (Qgis, QgsCoordinateTransform, QgsMessageLog, QgsProcessingUtils,
                       QgsProject)
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget, QgsFileWidget, QgsMessageBar
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QTextDocument
from qgis.PyQt.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout,
                                 QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
                                 QScrollArea, QSizePolicy, QSpinBox, QTableWidget,
                                 QTableWidgetItem, QVBoxLayout, QWidget)

from engine.tasks import get_task

from . import deps
from .algorithms.base import DEFAULT_MODEL
from .inputs import PluginInputError, match_modalities, parameter_name
from .widgets import ModalityInput

LOG_TAG = "MAESTRO"
PROVIDER_WORDS = {"CPUExecutionProvider": "the CPU", "CUDAExecutionProvider": "the GPU (CUDA)"}


def guarded(method):
    """Slot decorator: exceptions go to the message bar (plain words) and the log."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (PluginInputError, ValueError) as exc:  # the user's input: the message says it
            self.show_error(str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 (see module docstring)
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.MessageLevel.Critical)
            try:
                from engine.errors import MaestroError
            except Exception:  # noqa: BLE001
                MaestroError = ()  # noqa: N806
            if MaestroError and isinstance(exc, MaestroError):
                self.show_error(str(exc))
            else:
                self.show_error(f"something went wrong: {exc} (details in the MAESTRO log panel)")
            return None
    return wrapper


def model_title(meta) -> str:
    """``maestro-tiny-slovenia-lulc``, ``version 1``: the name, then the version in words."""
    version = f" (version {meta.version})" if str(meta.version).strip() else ""
    return f"{meta.name}{version}"


def model_summary_html(meta) -> str:
    """What the model does and needs: task, modalities (bands, pixel size, dates), classes
    with their colours. Short: the card (description, provenance) is shown apart."""
    esc = html.escape
    parts = [f"<b>{esc(model_title(meta))}</b><br>",
             f"{esc(meta.task.capitalize())}{' (multilabel)' if meta.multilabel else ''}, "
             f"output on the {esc(parameter_name(meta.reference_modality))} grid.<br>"]
    parts.append("Needs: " + "; ".join(
        f"<b>{esc(parameter_name(m.name))}</b> ({len(m.bands)} band"
        f"{'s' if len(m.bands) != 1 else ''}, {m.gsd_m:g} m, "
        + (("1 date" if m.max_dates == 1 else
            f"{m.min_dates}-{m.max_dates} dates" if m.min_dates != m.max_dates else
            f"{m.min_dates} dates") + ")")
        for m in meta.modalities) + ".")
    if meta.classes:
        parts.append("<br>Classes: " + ", ".join(
            f"<span style='background:{esc(c.color)}'>&nbsp;&nbsp;&nbsp;</span>&nbsp;"
            f"{esc(c.name)}" for c in meta.classes))
    if meta.embedding_dim:
        parts.append(f"<br>Embedding dimension: {meta.embedding_dim}")
    return "".join(parts)


def model_card_html(meta, path: str) -> str:
    """The model card: description, every modality in full, provenance, the file."""
    esc = html.escape
    parts = []
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
    prov = dict(meta.provenance)
    parts.append("Card:<ul>")
    for key in ("training_data", "licence", "metrics", "created", "code_version"):
        if key in prov:
            parts.append(f"<li>{esc(key)}: {esc(str(prov[key]))}</li>")
    parts.append(f"</ul><small>{esc(path)}</small>")
    return "".join(parts)


def plain(html_text: str) -> str:
    doc = QTextDocument()
    doc.setHtml(html_text)
    return doc.toPlainText()


class MaestroDock(QgsDockWidget):
    """The panel. Test hooks: ``set_model``, ``modality_inputs``, ``output_widget``,
    ``run_button``, ``preview_button``, ``cancel_button``, ``task``, ``progress_bar``,
    ``model_info`` (summary label), ``card_info``, ``areas_table``, ``deps_label``,
    ``train_panel``, ``similarity_button``, ``similarity_tool``, ``similarity``."""

    run_finished = pyqtSignal(bool, str)   # ok, layer id or error message
    training_finished = pyqtSignal(bool, str)    # ok, new model path or error message
    similarity_finished = pyqtSignal(bool, str)  # ok, layer id or error message

    def __init__(self, iface=None, parent=None):
        super().__init__("MAESTRO land cover", parent)
        self.setObjectName("MaestroDock")
        self.iface = iface
        self.meta = None
        self.model_path = ""
        self.task = None
        self.preview = False
        self.modality_inputs: dict[str, ModalityInput] = {}
        self._dialogs = []
        self.last_message = ""
        self.last_report = None  # engine RunReport of the last successful run
        self.last_areas = None

        body = QWidget(self)
        self.body = body
        self.message_bar = QgsMessageBar(body)
        self.message_bar.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.deps_label = QLabel(body)
        self.deps_label.setWordWrap(True)
        self.deps_label.setStyleSheet("QLabel { background: #fff4ce; padding: 4px; }")
        self.install_button = QPushButton("Install dependencies…", body)
        self.diagnostics_button = QPushButton("Diagnostics…", body)
        self.model_widget = QgsFileWidget(body)
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText(
            f"default: {os.path.basename(DEFAULT_MODEL)}")
        self.model_widget.setToolTip("A MAESTRO ONNX model; empty = the bundled default model")
        self.model_info = QLabel(body)
        self.model_info.setWordWrap(True)
        self.model_info.setTextFormat(Qt.TextFormat.RichText)
        self.model_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.card_box = QgsCollapsibleGroupBox("Model card", body)
        self.card_box.setCollapsed(True)
        self.card_info = QLabel(self.card_box)
        self.card_info.setWordWrap(True)
        self.card_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.card_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        QVBoxLayout(self.card_box).addWidget(self.card_info)
        self.modalities_box = QWidget(body)
        self.modalities_layout = QVBoxLayout(self.modalities_box)
        self.modalities_layout.setContentsMargins(0, 0, 0, 0)
        self.output_widget = QgsFileWidget(body)
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
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
        self.float16_check = QCheckBox("float16 on an NVIDIA GPU", advanced)
        self.float16_check.setToolTip("On CUDA, run a float16 copy of the model: faster, "
                                      "outputs differ slightly; ignored on CPU")
        self.in_flight_spin = QSpinBox(advanced)
        self.in_flight_spin.setRange(0, 64)
        self.in_flight_spin.setValue(0)
        self.in_flight_spin.setSpecialValueText("auto")
        self.in_flight_spin.setToolTip("Batches run at once, each on its share of the CPU "
                                       "threads, blended in tile order (same output); auto = "
                                       "min(cores, 4) on CPU, 1 on CUDA")
        form = QFormLayout(advanced)
        form.addRow("Tile overlap", self.overlap_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.float16_check)
        form.addRow("Batches in flight", self.in_flight_spin)
        self.areas_box = QgsCollapsibleGroupBox("Class areas of the last run", body)
        self.areas_table = QTableWidget(0, 3, self.areas_box)
        self.areas_table.setHorizontalHeaderLabels(["Class", "ha", "%"])
        self.areas_table.verticalHeader().setVisible(False)
        self.areas_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.areas_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        QVBoxLayout(self.areas_box).addWidget(self.areas_table)
        self.areas_box.setVisible(False)
        from .similarity_tool import SimilarityRunner
        from .train_panel import TrainPanel

        self.similarity_button = QPushButton("Similarity map: click a place…", body)
        self.similarity_button.setCheckable(True)
        self.similarity_button.setToolTip(
            "Then click the map: the similarity of every place of the input stack to the "
            "clicked one (cosine of the model's encoder features), as a new layer")
        self.similarity_tool = None
        self.similarity_marker = None   # a cross on the canvas at the last clicked place
        self.similarity = SimilarityRunner(self, self._similarity_done)
        self.train_panel = TrainPanel(self, body)
        self.train_panel.setCollapsed(True)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.preview_button = QPushButton("Preview", self)
        self.preview_button.setToolTip("Run on the visible map area only (quick look; "
                                       "temporary layer)")
        self.run_button = QPushButton("Run", self)
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.install_button)
        top.addWidget(self.diagnostics_button)
        top.addStretch(1)
        layout = QVBoxLayout(body)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.deps_label)
        layout.addLayout(top)
        layout.addWidget(QLabel("<b>Model</b>", body))
        layout.addWidget(self.model_widget)
        layout.addWidget(self.model_info)
        layout.addWidget(self.card_box)
        layout.addWidget(QLabel("<b>Input layers</b>", body))
        layout.addWidget(self.modalities_box)
        layout.addWidget(QLabel("<b>Output</b> (GeoTIFF)", body))
        layout.addWidget(self.output_widget)
        layout.addWidget(self.confidence_check)
        layout.addWidget(advanced)
        layout.addWidget(self.areas_box)
        layout.addWidget(self.similarity_button)
        layout.addWidget(self.train_panel)
        layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(body)
        # the run row stays visible below the scrolled part, whatever the panel's height
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress_bar, 1)
        run_row.addWidget(self.preview_button)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        outer = QWidget(self)
        outer_layout = QVBoxLayout(outer)
        outer_layout.setContentsMargins(0, 0, 0, 4)
        outer_layout.addWidget(self.scroll, 1)
        outer_layout.addLayout(run_row)
        self.setWidget(outer)

        self.model_widget.fileChanged.connect(self.set_model)
        # lambdas: clicked(bool) would pass its argument to the methods
        self.run_button.clicked.connect(lambda: self.run())
        self.preview_button.clicked.connect(lambda: self.run_preview())
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.install_button.clicked.connect(lambda: self.open_installer())
        self.diagnostics_button.clicked.connect(lambda: self.open_diagnostics())
        self.similarity_button.toggled.connect(lambda on: self.set_similarity_tool(on))
        self.refresh_dependencies()
        self.set_model("")

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
        self._bar().pushMessage("MAESTRO", message, Qgis.MessageLevel.Critical, 15)

    def show_warning(self, message: str) -> None:
        self.last_message = message
        self._bar().pushMessage("MAESTRO", message, Qgis.MessageLevel.Warning, 10)

    def show_info(self, message: str, level=Qgis.MessageLevel.Success) -> None:
        self.last_message = message
        self._bar().pushMessage("MAESTRO", message, level, 8)

    @guarded
    def refresh_dependencies(self) -> list:
        """Show what is missing (one line in the panel, no message bar) and enable Run."""
        missing = deps.missing_dependencies()
        for module, why in missing:
            QgsMessageLog.logMessage(f"{module} does not import: {why}", LOG_TAG,
                                     Qgis.MessageLevel.Info)
        if missing:
            names = ", ".join(m for m, _ in missing)
            text = (f"<b>{html.escape(names)}</b> {'is' if len(missing) == 1 else 'are'} not "
                    "installed yet: the model's needs are shown below, but nothing can run "
                    "until you click <b>Install dependencies…</b> (installs into your QGIS "
                    "profile; no administrator rights, no restart).")
            if any(m == "rasterio" for m, _ in missing) and deps.platform_rasterio_package():
                text += f" rasterio: {html.escape(deps.platform_rasterio_package())}."
            self.deps_label.setText(text)
        self.deps_label.setVisible(bool(missing))
        self.install_button.setVisible(bool(missing))
        idle = not missing and not self.busy()
        self.run_button.setEnabled(idle)
        self.preview_button.setEnabled(idle)
        tip = "" if not missing else "Install the dependencies first"
        self.run_button.setToolTip(tip)
        self.similarity_button.setEnabled(not missing)
        if getattr(self, "train_panel", None) is not None:
            self.train_panel.refresh_dependencies()
        return missing

    # ------------------------------------------------------------- model
    def chosen_model_path(self) -> str:
        """The model field's path, or the bundled default model when it is empty."""
        return self.model_widget.filePath().strip() or DEFAULT_MODEL

    @guarded
    def set_model(self, path: str) -> None:
        """Read the model's metadata (no onnxruntime needed) and show what it needs.

        An empty path means the bundled default model. Layers already chosen are kept for
        every modality the new model also has (and still fits); choosing the same model
        again changes nothing.
        """
        if self.model_widget.filePath() != path:
            self.model_widget.blockSignals(True)
            self.model_widget.setFilePath(path)
            self.model_widget.blockSignals(False)
        resolved = (path or "").strip() or DEFAULT_MODEL
        if self.meta is not None and os.path.abspath(resolved) == os.path.abspath(
                self.model_path):
            return
        kept = {name: w.layer_ids() for name, w in self.modality_inputs.items()}
        self.meta, self.model_path = None, ""
        self._clear_modalities()
        self.card_info.setText("")
        if not os.path.isfile(resolved) and not path:
            self.model_info.setText("Choose a MAESTRO model (.onnx).")
            return
        from .model_file import read_model_card

        try:
            meta = read_model_card(resolved)
        except Exception as exc:  # noqa: BLE001 (shown where the model info would be)
            self.model_info.setText(f"<span style='color:#b00020'>{html.escape(str(exc))}</span>")
            raise
        self.meta, self.model_path = meta, resolved
        self.model_info.setText(model_summary_html(meta))
        self.card_info.setText(model_card_html(meta, resolved))
        self.confidence_check.setVisible(get_task(meta.task).layout(meta).class_ids)
        project = QgsProject.instance()
        for spec in meta.modalities:
            widget = ModalityInput(spec, self.modalities_box)
            widget.refused.connect(self.show_warning)
            self.modality_inputs[widget.name] = widget
            self.modalities_layout.addWidget(widget)
            layers = [project.mapLayer(i) for i in kept.get(widget.name, [])]
            widget.add_layers([layer for layer in layers if layer is not None])

    def model_summary_text(self) -> str:
        """The summary and card as plain text (tests, logs)."""
        return plain(self.model_info.text()) + "\n" + plain(self.card_info.text())

    def _clear_modalities(self):
        for widget in self.modality_inputs.values():
            self.modalities_layout.removeWidget(widget)
            widget.deleteLater()
        self.modality_inputs = {}

    # ------------------------------------------------------------- run
    def output_path(self, preview: bool = False) -> str:
        """The output field's path (``.tif`` added), or a new file in QGIS's temporary
        Processing folder (removed by QGIS when it closes) when the field is empty."""
        path = "" if preview else self.output_widget.filePath().strip()
        if not path:
            name = f"{self.meta.name}-{'preview' if preview else self.meta.task}.tif"
            return QgsProcessingUtils.generateTempFilename(name)
        if not path.lower().endswith((".tif", ".tiff")):
            path += ".tif"
        return path

    def canvas_bounds(self):
        """The visible map extent in the reference modality's CRS (that of its first
        layer), as (xmin, ymin, xmax, ymax).

        Raises:
            PluginInputError: no map canvas, or no layer for the reference modality yet.
        """
        if self.iface is None:
            raise PluginInputError("Preview needs the QGIS map")
        ref = self.modality_inputs.get(parameter_name(self.meta.reference_modality))
        ids = ref.layer_ids() if ref else []
        layer = QgsProject.instance().mapLayer(ids[0]) if ids else None
        if layer is None:
            name = parameter_name(self.meta.reference_modality)
            raise PluginInputError(f"Preview: add the {name} layers first")
        canvas = self.iface.mapCanvas()
        extent = canvas.extent()
        source_crs = canvas.mapSettings().destinationCrs()
        if source_crs.isValid() and source_crs != layer.crs():
            extent = QgsCoordinateTransform(source_crs, layer.crs(),
                                            QgsProject.instance()).transformBoundingBox(extent)
        return (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())

    @guarded
    def run_preview(self) -> bool:
        """Run on the visible map extent only; the result is a temporary layer (the
        previous preview is replaced)."""
        return self._start(preview=True)

    @guarded
    def run(self) -> bool:
        """Start the task; returns False (with a message) when something is not set."""
        return self._start(preview=False)

    def _start(self, preview: bool) -> bool:
        if self.busy():
            return False
        if self.refresh_dependencies():
            self.show_warning(deps.missing_message(deps.missing_dependencies()))
            return False
        if self.meta is None:
            self.show_error("choose a MAESTRO model (.onnx) first")
            return False
        from engine.api import RunOptions

        from .task import MaestroRunTask

        # each row's date (read from the raster, possibly edited) travels in its LayerInput
        given = {name: w.layer_inputs() for name, w in self.modality_inputs.items()}
        inputs = match_modalities(self.meta, given)
        bounds = self.canvas_bounds() if preview else None
        output = self.output_path(preview)
        confidence = None
        if (not preview and self.confidence_check.isChecked()
                and get_task(self.meta.task).layout(self.meta).class_ids):
            confidence = os.path.splitext(output)[0] + "_confidence.tif"
        options = RunOptions(tile_overlap_pct=self.overlap_spin.value(),
                             batch_size=self.batch_spin.value(),
                             device=self.device_combo.currentText(),
                             batches_in_flight=self.in_flight_spin.value() or None,
                             float16=True if self.float16_check.isChecked() else None,
                             confidence_path=confidence, expect_task=self.meta.task,
                             bounds=bounds)
        task = MaestroRunTask(self.model_path, self.meta, inputs, output, options,
                              layer_name=self._preview_name() if preview else "")
        task.progressChanged.connect(lambda value: self.progress_bar.setValue(int(value)))
        task.succeeded.connect(self._succeeded)
        task.failed.connect(self._failed)
        self.task = task  # the Python object must outlive the run
        self.preview = preview
        self.progress_bar.setValue(0)
        self.run_button.setEnabled(False)
        self.preview_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        from qgis.core import QgsApplication

        QgsApplication.taskManager().addTask(task)
        return True

    def _preview_name(self) -> str:
        from .task import short_model_name

        return f"preview {short_model_name(self.meta.name)}"

    @guarded
    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.similarity.run is not None:
            self.similarity.cancel()

    def _end(self):
        self.task = None
        self.cancel_button.setEnabled(False)
        self.refresh_dependencies()

    @guarded
    def _succeeded(self, layer_id: str) -> None:
        task = self.task
        preview = self.preview
        self._end()
        self.progress_bar.setValue(100)
        project = QgsProject.instance()
        if preview:  # one preview layer at a time
            for old in list(project.mapLayers().values()):
                if old.id() != layer_id and old.customProperty("maestro/preview"):
                    project.removeMapLayer(old.id())
            layer = project.mapLayer(layer_id)
            if layer is not None:
                layer.setCustomProperty("maestro/preview", True)
        layer = project.mapLayer(layer_id)
        self.last_report = task.report if task else None
        self.last_areas = task.areas if task else None
        self.show_areas(self.last_areas)
        report = self.last_report
        where = PROVIDER_WORDS.get(report.provider, report.provider) if report else ""
        what = "Preview" if preview else get_task(self.meta.task).title
        name = layer.name() if layer else ""
        seconds = f", {report.seconds:.0f} s" if report else ""
        warnings = [m for m in (report.messages if report else []) if m.startswith("warning:")]
        for line in warnings:
            QgsMessageLog.logMessage(line, LOG_TAG, Qgis.MessageLevel.Warning)
        if warnings:
            more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
            self.show_warning(f"{what} ready: '{name}' added to the map, with a warning{more} "
                              f"in the MAESTRO log panel: {warnings[0][len('warning: '):]}")
        else:
            self.show_info(f"{what} ready: '{name}' added to the map (on {where}{seconds}).")
        self.run_finished.emit(True, layer_id)

    @guarded
    def _failed(self, message: str) -> None:
        task = self.task
        self._end()
        self.progress_bar.setValue(0)
        if task is not None and task.cancelled:
            self.show_info("Run cancelled: no output was written.", Qgis.MessageLevel.Info)
        else:
            self.show_error(message)
        self.run_finished.emit(False, message)

    def show_areas(self, areas) -> None:
        """Fill the class-area table (hidden when there are none)."""
        self.areas_table.setRowCount(0)
        if not areas:
            self.areas_box.setVisible(False)
            return
        for a in areas:
            row = self.areas_table.rowCount()
            self.areas_table.insertRow(row)
            name = QTableWidgetItem(a.name)
            name.setData(Qt.ItemDataRole.DecorationRole, QColor(a.color))
            self.areas_table.setItem(row, 0, name)
            for col, text in ((1, f"{a.hectares:,.2f}"), (2, f"{a.percent:.1f}")):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.areas_table.setItem(row, col, item)
        header = self.areas_table.horizontalHeader().sizeHint().height()
        rows = self.areas_table.verticalHeader().defaultSectionSize() * len(areas)
        self.areas_table.setFixedHeight(header + rows + 2 * self.areas_table.frameWidth() + 2)
        self.areas_box.setTitle("Class areas of the preview" if self.preview
                                else "Class areas of the last run")
        self.areas_box.setVisible(True)

    # ------------------------------------------------------------- Processing runs
    def processing_parameters(self) -> dict:
        """The panel's model, input rows (sources; edited dates as DATES) and advanced
        settings as Processing parameters (maestro:train_classes, maestro:embed...).

        Raises:
            PluginInputError: no model, or the rows do not fit it.
            ValueError: a row's layer was removed or its date is not YYYY-MM-DD.
        """
        if self.meta is None:
            raise PluginInputError("choose a MAESTRO model (.onnx) first")
        given = {name: w.layer_inputs() for name, w in self.modality_inputs.items()}
        matched = match_modalities(self.meta, given)
        params, dates = {"MODEL": self.model_path}, []
        for modality, items in matched.items():
            name = parameter_name(modality)
            params[name] = [item.source for item in items]
            dates += [f"{name}:{item.source}={item.date.isoformat()}" for item in items
                      if item.date is not None]
        params.update({"DATES": "; ".join(dates), "TILE_OVERLAP": self.overlap_spin.value(),
                       "BATCH_SIZE": self.batch_spin.value(),
                       "DEVICE": self.device_combo.currentText(),
                       "FLOAT16": self.float16_check.isChecked(),
                       "BATCHES_IN_FLIGHT": self.in_flight_spin.value()})
        return params

    def busy(self) -> bool:
        """A run, a training or a similarity map is in progress."""
        panel = getattr(self, "train_panel", None)
        similarity = getattr(self, "similarity", None)
        return (self.task is not None or (panel is not None and panel.run is not None)
                or (similarity is not None and similarity.run is not None))

    @guarded
    def train(self) -> bool:
        """Start maestro:train_classes with the Train part's labels and this panel's model
        and inputs; False (with a message) when something is missing."""
        if self.busy():
            return False
        if self.refresh_dependencies():
            self.show_warning(deps.missing_message(deps.missing_dependencies()))
            return False
        missing = deps.missing_train_dependencies()
        if missing:
            self.show_warning(deps.missing_train_message(missing))
            return False
        params = self.train_panel.parameters()
        self.train_panel.start(params)
        self.run_button.setEnabled(False)
        self.preview_button.setEnabled(False)
        return True

    @guarded
    def training_done(self, ok: bool, results: dict, message: str,
                      cancelled: bool = False) -> None:
        """The new model becomes the panel's model (rows kept) and the headline is shown;
        or the error / cancel in words."""
        self.refresh_dependencies()
        if not ok:
            self.train_panel.progress_bar.setValue(0)
            if cancelled or message == "cancelled":
                self.train_panel.status_label.setText("Training cancelled: no model written.")
                self.show_info("Training cancelled: no model was written.",
                               Qgis.MessageLevel.Info)
                self.training_finished.emit(False, "cancelled")
            else:
                self.train_panel.status_label.setText(
                    f"<span style='color:#b00020'>{html.escape(message)}</span>")
                self.show_error(f"Training failed: {message}")
                self.training_finished.emit(False, message)
            return
        model = results.get("OUTPUT_MODEL", "")
        self.set_model(model)
        self.train_panel.show_result(results)
        self.show_info(f"New model '{self.meta.name if self.meta else model}' trained and "
                       "chosen: Run maps your classes.")
        self.training_finished.emit(True, model)

    # ------------------------------------------------------------- similarity
    def set_similarity_tool(self, on: bool) -> None:
        """Make the similarity tool the canvas's map tool (or give the previous one back)."""
        if self.iface is None:
            return
        canvas = self.iface.mapCanvas()
        if on:
            from .similarity_tool import SimilarityMapTool

            if self.similarity_tool is None:
                self.similarity_tool = SimilarityMapTool(canvas)
                self.similarity_tool.clicked.connect(
                    lambda point: self.similarity_at(point, canvas.mapSettings()
                                                     .destinationCrs()))
                self.similarity_tool.deactivated.connect(
                    lambda: self.similarity_button.setChecked(False))
            self._previous_tool = canvas.mapTool()
            canvas.setMapTool(self.similarity_tool)
        else:
            if self.similarity_marker is not None:
                self.similarity_marker.hide()
            if self.similarity_tool is not None and canvas.mapTool() is self.similarity_tool:
                canvas.unsetMapTool(self.similarity_tool)
                previous = getattr(self, "_previous_tool", None)
                if previous is not None:
                    canvas.setMapTool(previous)

    def hideEvent(self, event):
        """A closed panel gives the map its previous tool back (and hides the cross)."""
        try:
            if self.similarity_button.isChecked():
                self.similarity_button.setChecked(False)
        except Exception:  # noqa: BLE001 (never into Qt's event loop)
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.MessageLevel.Warning)
        super().hideEvent(event)

    def shutdown(self) -> None:
        """The plugin unloads: cancel the run, the training and the similarity map, give
        the map tool back and remove the cross."""
        if self.task is not None:
            self.task.cancel()
        if self.train_panel.run is not None:
            self.train_panel.cancel()
        if self.similarity.run is not None:
            self.similarity.cancel()
        self.set_similarity_tool(False)
        if self.similarity_marker is not None and self.iface is not None:
            self.iface.mapCanvas().scene().removeItem(self.similarity_marker)
            self.similarity_marker = None

    def _mark(self, point, crs) -> None:
        """Show a cross at the clicked place (the canvas's CRS)."""
        if self.iface is None:
            return
        from qgis.gui import QgsVertexMarker

        canvas = self.iface.mapCanvas()
        if crs.isValid() and crs != canvas.mapSettings().destinationCrs():
            point = QgsCoordinateTransform(crs, canvas.mapSettings().destinationCrs(),
                                           QgsProject.instance()).transform(point)
        if self.similarity_marker is None:
            marker = QgsVertexMarker(canvas)
            marker.setIconType(QgsVertexMarker.IconType.ICON_CROSS)
            marker.setColor(QColor("#ff1744"))
            marker.setIconSize(18)
            marker.setPenWidth(3)
            self.similarity_marker = marker
        self.similarity_marker.setCenter(point)
        self.similarity_marker.show()

    @guarded
    def similarity_at(self, point, crs) -> bool:
        """The similarity map of the current stack to the place ``point`` (QgsPointXY in
        ``crs``); False (with a message) when the panel is busy or not ready."""
        if self.busy():
            self.show_warning("MAESTRO is busy: wait for the current run to end")
            return False
        if self.refresh_dependencies():
            self.show_warning(deps.missing_message(deps.missing_dependencies()))
            return False
        params = self.processing_parameters()
        self.progress_bar.setValue(0)
        self.run_button.setEnabled(False)
        self.preview_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._mark(point, crs)
        self.similarity.start(point, crs, params)
        return True

    @guarded
    def _similarity_done(self, ok: bool, payload: str) -> None:
        self.cancel_button.setEnabled(False)
        self.refresh_dependencies()
        if ok:
            self.progress_bar.setValue(100)
            layer = QgsProject.instance().mapLayer(payload)
            self.show_info(f"Similarity map '{layer.name() if layer else ''}' added (1 = the "
                           "same features as the clicked place).")
        elif payload == "cancelled":
            self.progress_bar.setValue(0)
            self.show_info("Similarity map cancelled.", Qgis.MessageLevel.Info)
        else:
            self.progress_bar.setValue(0)
            self.show_error(f"Similarity map: {payload}")
        self.similarity_finished.emit(ok, payload)

    # ------------------------------------------------------------- dialogs
    @guarded
    def open_installer(self, train: bool = False):
        """The installer; ``train`` ticks the optional training packages."""
        from .installer_dialog import InstallDependenciesDialog

        dialog = InstallDependenciesDialog(parent=self, train=train)
        dialog.finished_install.connect(lambda ok: self.dependencies_installed(ok))
        self._dialogs.append(dialog)
        dialog.show()
        return dialog

    @guarded
    def dependencies_installed(self, ok: bool) -> None:
        """After the installer: enable Run, re-read the model if it failed before; the
        layer rows stay."""
        missing = self.refresh_dependencies()
        if self.meta is None:
            self.set_model(self.model_widget.filePath())
        if ok and not missing:
            self.show_info("Dependencies installed: MAESTRO can run now.")
        self.train_panel.refresh_dependencies()

    @guarded
    def open_diagnostics(self):
        from .diagnostics_dialog import DiagnosticsDialog

        dialog = DiagnosticsDialog(self)
        self._dialogs.append(dialog)
        dialog.show()
        return dialog
