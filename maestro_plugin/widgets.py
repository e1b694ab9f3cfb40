"""Small widgets of the dock: the ordered, dated layer list of one modality."""
from __future__ import annotations

import datetime

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView,
                                 QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from .inputs import MODALITY_TITLES, LayerInput, describe_modality, parameter_name

LAYER_ID_ROLE = Qt.UserRole + 1
READ_DATE_ROLE = Qt.UserRole + 2


def slice_date(source: str) -> datetime.date | None:
    """The date the engine would read for a raster (None when none or engine missing)."""
    try:
        from engine.dates import read_slice_date

        return read_slice_date(source)
    except Exception:  # noqa: BLE001 (shown as an empty, editable cell)
        return None


class ModalityInput(QGroupBox):
    """The layers of one modality: an ordered list with one editable date per layer.

    A single-date modality holds at most one layer. Rows: (layer name, date YYYY-MM-DD).
    """

    changed = pyqtSignal()

    def __init__(self, spec, parent=None):
        name = parameter_name(spec.name)
        super().__init__(f"{name}: {MODALITY_TITLES.get(name, name)}", parent)
        self.spec = spec
        self.name = name
        self.description = QLabel(describe_modality(spec), self)
        self.description.setWordWrap(True)
        self.setObjectName(f"modality_{self.name}")
        self.combo = QgsMapLayerComboBox(self)
        self.combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.combo.setAllowEmptyLayer(True)
        self.combo.setLayer(None)
        self.add_button = QPushButton("Add", self)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Layer", "Date (YYYY-MM-DD)"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().setVisible(True)
        self.remove_button = QPushButton("Remove", self)
        self.up_button = QPushButton("Up", self)
        self.down_button = QPushButton("Down", self)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.add_button)
        buttons = QHBoxLayout()
        for b in (self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.description)
        layout.addLayout(row)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.table.setMaximumHeight(60 if spec.max_dates == 1 else 150)
        for b in (self.up_button, self.down_button):
            b.setVisible(spec.max_dates > 1)
        self.add_button.clicked.connect(lambda: self.add_layer(self.combo.currentLayer()))
        self.remove_button.clicked.connect(lambda: self.remove_row(self.table.currentRow()))
        self.up_button.clicked.connect(lambda: self.move_row(self.table.currentRow(), -1))
        self.down_button.clicked.connect(lambda: self.move_row(self.table.currentRow(), 1))

    def add_layer(self, layer: QgsRasterLayer | None, date: datetime.date | None = None) -> bool:
        """Append a layer; its date is read as the engine would unless given."""
        if layer is None:
            return False
        if self.spec.max_dates == 1:
            self.table.setRowCount(0)
        read = slice_date(layer.source())
        date = date or read
        row = self.table.rowCount()
        self.table.insertRow(row)
        item = QTableWidgetItem(layer.name())
        item.setData(LAYER_ID_ROLE, layer.id())
        item.setFlags(item.flags() & ~Qt.ItemIsEditable)
        item.setToolTip(layer.source())
        self.table.setItem(row, 0, item)
        date_item = QTableWidgetItem(date.isoformat() if date else "")
        # what the engine reads by itself: passed on only when the user changes it (the
        # engine's own reading keeps the hour of acquisition)
        date_item.setData(READ_DATE_ROLE, read.isoformat() if read else "")
        self.table.setItem(row, 1, date_item)
        self.changed.emit()
        return True

    def remove_row(self, row: int) -> None:
        if 0 <= row < self.table.rowCount():
            self.table.removeRow(row)
            self.changed.emit()

    def move_row(self, row: int, delta: int) -> None:
        other = row + delta
        if not (0 <= row < self.table.rowCount() and 0 <= other < self.table.rowCount()):
            return
        for col in range(2):
            a, b = self.table.takeItem(row, col), self.table.takeItem(other, col)
            self.table.setItem(row, col, b)
            self.table.setItem(other, col, a)
        self.table.setCurrentCell(other, 0)
        self.changed.emit()

    def set_date(self, row: int, text: str) -> None:
        self.table.item(row, 1).setText(text)

    def layer_inputs(self, project: QgsProject | None = None) -> list[LayerInput]:
        """The rows as LayerInput, in order.

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
            cell = self.table.item(row, 1)
            text = (cell.text() or "").strip()
            if text == (cell.data(READ_DATE_ROLE) or ""):
                text = ""  # unchanged: let the engine read it (with the hour)
            try:
                date = datetime.date.fromisoformat(text) if text else None
            except ValueError:
                raise ValueError(f"{self.name}: date '{text}' of layer '{item.text()}' is not "
                                 "YYYY-MM-DD") from None
            out.append(LayerInput(layer.source(), layer.name(), date))
        return out
