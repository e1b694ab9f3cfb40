"""Small widgets of the dock: the dated layer list of one modality and the layer picker.

A modality's table is kept sorted by date (the engine sorts by date anyway); a
single-date modality (a DEM, one SPOT image) has no date column. A layer is checked when
it is added (:func:`layer_problem`): a raster whose band count or band names do not fit
the model, or a MAESTRO output, is refused with a message instead of failing after *Run*.
"""
from __future__ import annotations

import datetime

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QGroupBox,
                                 QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem,
                                 QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from .inputs import MODALITY_TITLES, LayerInput, describe_modality, parameter_name

LAYER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
READ_DATE_ROLE = Qt.ItemDataRole.UserRole + 2
#: custom property set on the layers the dock adds (its outputs are never offered as inputs)
OUTPUT_PROPERTY = "maestro/output"
#: band descriptions the engine writes into its outputs (engine/runner.py)
OUTPUT_BAND_NAMES = ("class", "confidence")


def slice_date(source: str) -> datetime.date | None:
    """The date the engine would read for a raster (None when none or engine missing)."""
    try:
        from engine.dates import read_slice_date

        return read_slice_date(source)
    except Exception:  # noqa: BLE001 (no date: the row shows an empty, editable cell)
        return None


def band_names(source: str) -> list[str]:
    """GDAL band descriptions of a raster ('' where a band has none); [] if unreadable."""
    try:
        from osgeo import gdal

        ds = gdal.Open(source)
        if ds is None:
            return []
        return [ds.GetRasterBand(i).GetDescription() or "" for i in range(1, ds.RasterCount + 1)]
    except Exception:  # noqa: BLE001 (unreadable: the band count from QGIS still applies)
        return []


def is_maestro_output(layer: QgsMapLayer) -> bool:
    """A layer the dock added, or a raster whose bands are named as the engine names its
    outputs (``class``, ``confidence``, ``embedding_<i>``)."""
    if layer.customProperty(OUTPUT_PROPERTY):
        return True
    names = band_names(layer.source())
    return bool(names) and (names[0] in OUTPUT_BAND_NAMES or names[0].startswith("embedding_"))


def _engine_band_match(spec, source: str):
    """The engine's own band matching (engine/preprocessing/bands.py: names, then
    position), or None where that module or rasterio is not available.

    Returns:
        (True, None) when the engine would accept the raster's bands, (False, its message)
        when not, or None (not available: the caller falls back to the band count).
    """
    try:
        import rasterio

        from engine.errors import InputError
        from engine.preprocessing.bands import alpha_bands, match_bands, raster_band_names
    except Exception:  # noqa: BLE001 (older engine or no rasterio: count only)
        return None
    try:
        with rasterio.open(source) as src:
            names, alpha = raster_band_names(src), alpha_bands(src)
    except Exception:  # noqa: BLE001 (unreadable here: count only)
        return None
    try:
        match_bands(names, spec.bands, path=source, modality=spec.name, alpha=alpha)
    except InputError as exc:
        return False, str(exc)
    return True, None


def layer_problem(spec, layer) -> str | None:
    """Why a layer cannot be an input of this modality, or None when it fits.

    Checked: a raster layer read through GDAL (a file), not a MAESTRO output, and its
    bands as the engine matches them (by name when the raster names the model's bands,
    else by position: the same count); without the engine's matcher, the same count or
    band names that include every band the model wants.
    """
    name = parameter_name(spec.name)
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        return f"'{layer.name()}' is not a raster layer that can be read"
    if layer.providerType() != "gdal":
        return (f"'{layer.name()}' is a '{layer.providerType()}' layer; MAESTRO reads raster "
                "files (GDAL)")
    if is_maestro_output(layer):
        return f"'{layer.name()}' is a MAESTRO result, not an input image"
    want = len(spec.bands)
    have = layer.bandCount()
    count_message = (f"'{layer.name()}' has {have} band{'s' if have != 1 else ''}; {name} "
                     f"needs {want} band{'s' if want != 1 else ''} ({', '.join(spec.bands)})")
    engine = _engine_band_match(spec, layer.source())
    if engine is not None:
        ok, message = engine
        if ok:
            return None
        return count_message if have != want else f"'{layer.name()}': {message}"
    if have == want:
        return None
    names = {n.upper() for n in band_names(layer.source())}
    if have > want and all(b.upper() in names for b in spec.bands):
        return None
    return count_message


def plausible_layers(spec, project: QgsProject | None = None) -> list[QgsRasterLayer]:
    """The project's raster layers that fit a modality (:func:`layer_problem` is None)."""
    project = project or QgsProject.instance()
    layers = [layer for layer in project.mapLayers().values()
              if isinstance(layer, QgsRasterLayer)]
    return sorted((layer for layer in layers if layer_problem(spec, layer) is None),
                  key=lambda layer: layer.name().lower())


class LayerPicker(QDialog):
    """Choose several layers at once: the plausible layers of a modality, checkable."""

    def __init__(self, title: str, layers, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.list = QListWidget(self)
        for layer in layers:
            item = QListWidgetItem(layer.name(), self.list)
            item.setData(LAYER_ID_ROLE, layer.id())
            item.setToolTip(layer.source())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
        self.empty = QLabel("No layer of the project fits (band count, not a MAESTRO result). "
                            "Add the rasters to the project first.", self)
        self.empty.setWordWrap(True)
        self.empty.setVisible(not layers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(420, 320)

    def set_all_checked(self, checked: bool = True) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(state)

    def chosen_ids(self) -> list[str]:
        return [self.list.item(i).data(LAYER_ID_ROLE) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]


def _date_key(text: str):
    try:
        return (0, datetime.date.fromisoformat(text.strip()))
    except ValueError:
        return (1, datetime.date.max)  # undated (or invalid) rows last


class ModalityInput(QGroupBox):
    """The layers of one modality: a table sorted by date, one editable date per layer
    (no date column for a single-date modality, which holds at most one layer).

    Signals: ``changed`` (rows changed), ``refused(str)`` (a layer was refused: why).
    Test hooks: ``add_layers``, ``add_layer``, ``remove_row``, ``set_date``, ``table``,
    ``add_button`` (opens :class:`LayerPicker`), ``picker`` (the last one opened).
    """

    changed = pyqtSignal()
    refused = pyqtSignal(str)

    def __init__(self, spec, parent=None):
        name = parameter_name(spec.name)
        super().__init__(f"{name}: {MODALITY_TITLES.get(name, name)}", parent)
        self.spec = spec
        self.name = name
        self.dated = spec.max_dates > 1
        self.picker: LayerPicker | None = None
        self.setObjectName(f"modality_{self.name}")
        self.description = QLabel(describe_modality(spec).split(": ", 1)[1], self)
        self.description.setWordWrap(True)
        self.add_button = QPushButton("Add layers…" if self.dated else "Choose layer…", self)
        self.add_button.setToolTip("Layers of the project that fit this input "
                                   "(band count; MAESTRO results are left out)")
        self.remove_button = QPushButton("Remove", self)
        self.table = QTableWidget(0, 2 if self.dated else 1, self)
        self.table.setHorizontalHeaderLabels(["Layer", "Date"] if self.dated else ["Layer"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        if self.dated:
            header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
            self.table.setToolTip("Dates as the engine reads them (metadata, then file name); "
                                  "double-click a date to correct it (YYYY-MM-DD)")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rows = min(max(spec.max_dates, 1), 6) if self.dated else 1
        row_h = self.table.verticalHeader().defaultSectionSize()
        height = header.sizeHint().height() + rows * row_h + 2 * self.table.frameWidth() + 2
        self.table.setMinimumHeight(height)
        self.table.setMaximumHeight(height if not self.dated else height + 2 * row_h)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.description)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        self.add_button.clicked.connect(lambda: self.open_picker())
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.table.itemChanged.connect(self._item_changed)

    # ------------------------------------------------------------- adding
    def open_picker(self, modal: bool = True) -> LayerPicker:
        """The picker of the project's plausible layers; OK adds the checked ones."""
        picker = LayerPicker(f"{self.name}: add layers", plausible_layers(self.spec), self)
        if not self.dated:
            picker.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.picker = picker
        picker.accepted.connect(lambda: self._add_ids(picker.chosen_ids()))
        if modal:
            picker.open()
        return picker

    def _add_ids(self, ids) -> None:
        project = QgsProject.instance()
        self.add_layers([project.mapLayer(i) for i in ids if project.mapLayer(i) is not None])

    def add_layers(self, layers) -> list[str]:
        """Add several layers; returns the messages of those refused (also emitted)."""
        problems = []
        for layer in layers:
            problem = self._add(layer)
            if problem:
                problems.append(problem)
        if problems:
            self.refused.emit(f"{self.name}: " + "; ".join(problems))
        return problems

    def add_layer(self, layer: QgsRasterLayer | None, date: datetime.date | None = None) -> bool:
        """Add one layer (its date read as the engine would, unless given); False (and
        ``refused`` emitted) when it does not fit."""
        if layer is None:
            return False
        problem = self._add(layer, date)
        if problem:
            self.refused.emit(f"{self.name}: {problem}")
        return problem is None

    def _add(self, layer, date=None) -> str | None:
        problem = layer_problem(self.spec, layer)
        if problem:
            return problem
        if any(self.table.item(r, 0).data(LAYER_ID_ROLE) == layer.id()
               for r in range(self.table.rowCount())):
            return None  # already there
        self.table.blockSignals(True)
        if not self.dated:
            self.table.setRowCount(0)
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(layer.name())
        item.setData(LAYER_ID_ROLE, layer.id())
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        item.setToolTip(layer.source())
        self.table.setItem(row, 0, item)
        if self.dated:
            read = slice_date(layer.source())
            date = date or read
            date_item = QTableWidgetItem(date.isoformat() if date else "")
            # what the engine reads by itself: passed on only when the user changes it
            date_item.setData(READ_DATE_ROLE, read.isoformat() if read else "")
            if not date:
                date_item.setToolTip("No date found in the metadata or the file name: "
                                     "type it (YYYY-MM-DD)")
            self.table.setItem(row, 1, date_item)
        self.table.blockSignals(False)
        self.sort_by_date()
        self.changed.emit()
        return None

    # ------------------------------------------------------------- rows
    def sort_by_date(self) -> None:
        """Order the rows by date (undated last), keeping the selection's layer."""
        if not self.dated:
            return
        self.table.blockSignals(True)
        rows = [(self.table.takeItem(r, 0), self.table.takeItem(r, 1))
                for r in range(self.table.rowCount())]
        rows.sort(key=lambda pair: _date_key(pair[1].text()))
        for r, (layer_item, date_item) in enumerate(rows):
            self.table.setItem(r, 0, layer_item)
            self.table.setItem(r, 1, date_item)
        self.table.blockSignals(False)

    def _item_changed(self, item) -> None:
        if item.column() == 1:
            self.sort_by_date()
            self.changed.emit()

    def remove_row(self, row: int) -> None:
        if 0 <= row < self.table.rowCount():
            self.table.removeRow(row)
            self.changed.emit()

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedItems()}, reverse=True)
        if not rows and self.table.currentRow() >= 0:
            rows = [self.table.currentRow()]
        for row in rows:
            self.table.removeRow(row)
        if rows:
            self.changed.emit()

    def set_date(self, row: int, text: str) -> None:
        """Set a row's date text (as typing it would); the table is then re-sorted."""
        self.table.item(row, 1).setText(text)

    def layer_names(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def layer_ids(self) -> list[str]:
        return [self.table.item(r, 0).data(LAYER_ID_ROLE) for r in range(self.table.rowCount())]

    def dates(self) -> list[str]:
        if not self.dated:
            return []
        return [self.table.item(r, 1).text() for r in range(self.table.rowCount())]

    def layer_inputs(self, project: QgsProject | None = None) -> list[LayerInput]:
        """The rows as LayerInput, in table order.

        Raises:
            ValueError: a layer was removed from the project, or a date is not YYYY-MM-DD.
        """
        project = project or QgsProject.instance()
        out = []
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            layer = project.mapLayer(item.data(LAYER_ID_ROLE))
            if layer is None:
                raise ValueError(f"{self.name}: layer '{item.text()}' is no longer in the project")
            date = None
            if self.dated:
                cell = self.table.item(row, 1)
                text = (cell.text() or "").strip()
                if text == (cell.data(READ_DATE_ROLE) or ""):
                    text = ""  # unchanged: let the engine read it (with the hour)
                try:
                    date = datetime.date.fromisoformat(text) if text else None
                except ValueError:
                    raise ValueError(f"{self.name}: date '{text}' of layer '{item.text()}' is "
                                     "not YYYY-MM-DD") from None
            out.append(LayerInput(layer.source(), layer.name(), date))
        return out
