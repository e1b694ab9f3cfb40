"""The dock's *Train* part: your own classes from label layers (points, polygons) with the
dock's current model and input layers, by ``maestro:train_classes`` in the background.

When the training ends the new model becomes the dock's model (so *Run* maps your classes),
and the part shows the report's headline: the blocked cross-validation overall accuracy of
the new model and of the per-pixel random forest, the verdict sentence, and a link to the
HTML report. Without scikit-learn or onnx the part says which packages are missing and how
to install them, and *Train* stays disabled.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import tempfile

from qgis.core import QgsMapLayer, QgsProject, QgsWkbTypes
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget
from qgis.PyQt.QtCore import QUrl, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout,
                                 QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                                 QProgressBar, QPushButton, QSpinBox, QVBoxLayout)

from . import deps

LAYER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
NO_COLOUR = "(palette colours)"
ALGORITHM = "maestro:train_classes"


def default_models_dir() -> str:
    """Where new models go when no file is chosen: ``<QGIS profile>/maestro-models``
    (kept across sessions, unlike QGIS's temporary Processing folder)."""
    try:
        from qgis.core import QgsApplication

        base = QgsApplication.qgisSettingsDirPath()
    except Exception:  # noqa: BLE001 (outside QGIS)
        base = ""
    if not base:
        base = os.path.join(os.path.expanduser("~"), ".maestro-qgis")
    return os.path.join(base, "maestro-models")


def free_path(folder: str, stem: str, ext: str = ".onnx") -> str:
    """``folder/stem.onnx``, or ``stem-2.onnx``, ``-3``... when taken."""
    path, n = os.path.join(folder, stem + ext), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(folder, f"{stem}-{n}{ext}")
    return path


def safe_stem(name: str) -> str:
    """A file name from a model name (letters, digits, '-', '_', '.')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.")
    return stem or "my-classes"


def headline(results: dict) -> str:
    """The report's headline in words: OA of the new model, of the random forest, and the
    verdict sentence the algorithm wrote (``VERDICT``)."""
    oa = results.get("CV_OVERALL_ACCURACY")
    rf = results.get("CV_OVERALL_ACCURACY_RF")
    parts = []
    if isinstance(oa, (int, float)):
        parts.append(f"new model {100 * oa:.1f} %")
    if isinstance(rf, (int, float)):
        parts.append(f"random forest {100 * rf:.1f} %")
    text = ("Overall accuracy in blocked cross-validation: " + ", ".join(parts) + "."
            if parts else "")
    verdict = str(results.get("VERDICT") or "").strip()
    return f"{text} {verdict}".strip()



def label_snapshot(layer_id: str, folder: str) -> str:
    """Write the project's vector layer ``layer_id`` (its features as shown, unsaved edits
    included) to a GeoPackage in ``folder``; returns its path.

    Raises:
        PluginInputError: the layer is not in the project any more, or cannot be written.
    """
    from qgis.core import QgsVectorFileWriter

    from .inputs import PluginInputError

    layer = QgsProject.instance().mapLayer(layer_id)
    if layer is None:
        raise PluginInputError("Train: a ticked label layer was removed from the project; "
                               "tick the label layers again")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "labels"
    path = os.path.join(folder, f"{len(os.listdir(folder))}-{safe_stem(layer.name())}.gpkg")
    error, message, written, _ = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, path, QgsProject.instance().transformContext(), options)
    if error != QgsVectorFileWriter.WriterError.NoError:
        raise PluginInputError(f"Train: label layer '{layer.name()}' could not be copied for "
                               f"the background run: {message}")
    return written or path

class TrainPanel(QgsCollapsibleGroupBox):
    """Test hooks: ``labels_list``, ``class_combo``, ``colour_combo``, ``name_edit``,
    ``model_output``, ``folds_spin``, ``compare_rf_check``, ``train_button``,
    ``cancel_button``, ``progress_bar``, ``status_label``, ``deps_label``,
    ``install_button``, ``run`` (the running :class:`~maestro_plugin.alg_task.AlgorithmRun`),
    ``last_results``.

    Args:
        dock: the :class:`~maestro_plugin.dock.MaestroDock` (model, inputs, messages).
    Signals:
        trained(bool ok, str model path or message).
    """

    trained = pyqtSignal(bool, str)

    def __init__(self, dock, parent=None):
        super().__init__("Train your own classes", parent)
        self.dock = dock
        self.run = None
        self.last_results: dict = {}
        self.deps_label = QLabel(self)
        self.deps_label.setWordWrap(True)
        self.deps_label.setStyleSheet("QLabel { background: #fff4ce; padding: 4px; }")
        self.install_button = QPushButton("Install training packages…", self)
        self.labels_list = QListWidget(self)
        self.labels_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.labels_list.setToolTip("Vector layers of the project with your labelled places "
                                    "(points, lines or polygons); tick one or more")
        self.labels_list.setMaximumHeight(90)
        self.class_combo = QComboBox(self)
        self.class_combo.setToolTip("The field holding each feature's class (in every ticked "
                                    "layer)")
        self.colour_combo = QComboBox(self)
        self.colour_combo.setToolTip("Optional: a field with a colour per class (#rrggbb or a "
                                     "colour name)")
        self.name_edit = QLineEdit("my-classes", self)
        self.name_edit.setToolTip("Name of the new model (its metadata and file name)")
        self.model_output = QgsFileWidget(self)
        self.model_output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.model_output.setFilter("ONNX models (*.onnx)")
        self.model_output.lineEdit().setPlaceholderText("[in your QGIS profile: maestro-models]")
        self.folds_spin = QSpinBox(self)
        self.folds_spin.setRange(2, 20)
        self.folds_spin.setValue(5)
        self.folds_spin.setToolTip("Folds of the spatially blocked cross-validation")
        self.compare_rf_check = QCheckBox("Compare with a per-pixel random forest", self)
        self.compare_rf_check.setChecked(True)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.train_button = QPushButton("Train", self)
        self.train_button.setToolTip("Fit your classes on the model's encoder features (a "
                                     "background task); the new model then becomes the "
                                     "panel's model")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setOpenExternalLinks(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)

        form = QFormLayout()
        form.addRow("Class field", self.class_combo)
        form.addRow("Colour field", self.colour_combo)
        form.addRow("Model name", self.name_edit)
        form.addRow("New model", self.model_output)
        form.addRow("CV folds", self.folds_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress_bar, 1)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.deps_label)
        layout.addWidget(self.install_button)
        layout.addWidget(QLabel("Label layers (uses the model and input layers above)", self))
        layout.addWidget(self.labels_list)
        layout.addLayout(form)
        layout.addWidget(self.compare_rf_check)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)

        self.labels_list.itemChanged.connect(lambda _item: self.refresh_fields())
        self.train_button.clicked.connect(lambda: self.dock.train())
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.install_button.clicked.connect(lambda: self.dock.open_installer(train=True))
        project = QgsProject.instance()
        # bound methods: PyQt drops these connections when the panel is deleted
        project.layersAdded.connect(self._layers_changed)
        project.layersRemoved.connect(self._layers_changed)
        self.refresh_layers()
        self.refresh_dependencies()

    # ------------------------------------------------------------------ state
    def refresh_dependencies(self) -> list:
        """Show which training packages are missing (and disable Train); returns them."""
        missing = deps.missing_train_dependencies()
        if missing:
            self.deps_label.setText(html.escape(deps.missing_train_message(missing)))
        self.deps_label.setVisible(bool(missing))
        self.install_button.setVisible(bool(missing))
        self.update_buttons()
        return missing

    def update_buttons(self) -> None:
        idle = self.run is None
        missing = bool(deps.missing_train_dependencies()) or bool(deps.missing_dependencies())
        self.train_button.setEnabled(idle and not missing and not self.dock.busy())
        self.cancel_button.setEnabled(not idle)

    def _layers_changed(self, *_args) -> None:
        self.refresh_layers()

    def refresh_layers(self) -> None:
        """List the project's vector layers by name (ticks kept by layer id)."""
        try:
            ticked = set(self.label_layer_ids())
        except RuntimeError:  # the widget is being deleted
            return
        self.labels_list.blockSignals(True)
        self.labels_list.clear()
        layers = sorted(QgsProject.instance().mapLayers().values(),
                        key=lambda lyr: lyr.name().lower())
        for layer in layers:
            if layer.type() != QgsMapLayer.LayerType.VectorLayer or not layer.isSpatial():
                continue
            kind = QgsWkbTypes.geometryDisplayString(layer.geometryType())
            item = QListWidgetItem(f"{layer.name()} ({kind.lower()})")
            item.setData(LAYER_ID_ROLE, layer.id())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.id() in ticked
                               else Qt.CheckState.Unchecked)
            self.labels_list.addItem(item)
        self.labels_list.blockSignals(False)
        self.refresh_fields()

    def label_layer_ids(self) -> list[str]:
        out = []
        for row in range(self.labels_list.count()):
            item = self.labels_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(LAYER_ID_ROLE))
        return out

    def set_label_layers(self, layers) -> None:
        """Tick these layers (QgsVectorLayer objects or ids); the others are unticked."""
        ids = {layer if isinstance(layer, str) else layer.id() for layer in layers}
        self.labels_list.blockSignals(True)
        for row in range(self.labels_list.count()):
            item = self.labels_list.item(row)
            item.setCheckState(Qt.CheckState.Checked if item.data(LAYER_ID_ROLE) in ids
                               else Qt.CheckState.Unchecked)
        self.labels_list.blockSignals(False)
        self.refresh_fields()

    def refresh_fields(self) -> None:
        """Offer the fields every ticked layer has (kept when still there); a field named
        'class' is chosen first, and 'color'/'colour' for the colour."""
        project = QgsProject.instance()
        layers = [project.mapLayer(i) for i in self.label_layer_ids()]
        layers = [layer for layer in layers if layer is not None]
        names = None
        for layer in layers:
            fields = layer.fields().names()
            names = fields if names is None else [n for n in names if n in fields]
        names = names or []
        for combo, first, empty in ((self.class_combo, ("class", "classe", "label"), None),
                                    (self.colour_combo, ("color", "colour"), NO_COLOUR)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if empty:
                combo.addItem(empty)
            combo.addItems(names)
            wanted = current if current in names else next(
                (n for n in names if n.lower() in first), None)
            if wanted:
                combo.setCurrentText(wanted)
            combo.blockSignals(False)

    # ------------------------------------------------------------------ run
    def output_paths(self) -> tuple[str, str]:
        """(new model .onnx, report .html beside it)."""
        path = self.model_output.filePath().strip()
        if not path:
            folder = default_models_dir()
            os.makedirs(folder, exist_ok=True)
            path = free_path(folder, safe_stem(self.name_edit.text()))
        elif not path.lower().endswith(".onnx"):
            path += ".onnx"
        return path, os.path.splitext(path)[0] + "-report.html"

    def parameters(self) -> dict:
        """The maestro:train_classes parameters from this part and the dock.

        Raises:
            PluginInputError: no label layer ticked, or no class field.
        """
        from .inputs import PluginInputError

        labels = self.label_layer_ids()
        if not labels:
            raise PluginInputError("Train: tick at least one label layer (points or polygons "
                                   "with a class field)")
        field = self.class_combo.currentText().strip()
        if not field:
            raise PluginInputError("Train: the label layers have no field in common to use "
                                   "as the class field")
        colour = self.colour_combo.currentText()
        model, report = self.output_paths()
        params = self.dock.processing_parameters()
        params.update({"LABELS": labels, "CLASS_FIELD": field,
                       "COLOR_FIELD": "" if colour in ("", NO_COLOUR) else colour,
                       "NAME": self.name_edit.text().strip(), "OUTPUT_MODEL": model,
                       "REPORT": report, "FOLDS": self.folds_spin.value(),
                       "COMPARE_RF": self.compare_rf_check.isChecked()})
        return params

    def start(self, params: dict) -> None:
        """Run maestro:train_classes in the background on a snapshot of the label layers.

        The task gets no project: its rasters are opened from their paths and its label
        layers from GeoPackage copies written here, in the main thread, with the edits not
        saved yet. No layer of the map canvas is shared with the task's thread (GDAL and OGR
        handles are not thread-safe; the dock's similarity runs do the same).

        Raises:
            PluginInputError: a ticked label layer was removed or cannot be copied.
        """
        from .alg_task import AlgorithmRun

        params = dict(params)
        self._snapshot_dir = tempfile.mkdtemp(prefix="maestro-labels-")
        try:
            params["LABELS"] = [label_snapshot(layer_id, self._snapshot_dir)
                                for layer_id in params["LABELS"]]
        except BaseException:
            shutil.rmtree(self._snapshot_dir, ignore_errors=True)
            self._snapshot_dir = None
            raise
        run = AlgorithmRun(ALGORITHM, params, f"MAESTRO: train {params.get('NAME') or ''}",
                           self, use_project=False)
        run.progress.connect(lambda value: self.progress_bar.setValue(int(value)))
        run.done.connect(self._done)
        self.run = run
        self.progress_bar.setValue(0)
        self.status_label.setText("Training… (features, cross-validation, the final fit)")
        self.update_buttons()
        run.start()

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def _done(self, ok: bool, results: dict, message: str) -> None:
        run, self.run = self.run, None
        folder, self._snapshot_dir = getattr(self, "_snapshot_dir", None), None
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        self.update_buttons()
        self.dock.training_done(ok, results, message,
                                cancelled=bool(run is not None and run.cancelled))

    def show_result(self, results: dict) -> None:
        """The headline and the report link."""
        self.last_results = dict(results)
        text = html.escape(headline(results))
        report = results.get("REPORT")
        if report and os.path.isfile(report):
            url = QUrl.fromLocalFile(report).toString()
            text += f"<br><a href='{html.escape(url)}'>Open the training report</a>"
        model = results.get("OUTPUT_MODEL", "")
        if model:
            text += f"<br><small>{html.escape(model)}</small>"
        self.progress_bar.setValue(100)
        self.status_label.setText(text)
