"""The "Diagnostics" view: versions, execution providers available, the last run's."""
from __future__ import annotations

from qgis.PyQt.QtGui import QFont, QGuiApplication
from qgis.PyQt.QtWidgets import (QDialog, QDialogButtonBox, QPlainTextEdit, QPushButton,
                                 QVBoxLayout)

from . import diagnostics


class DiagnosticsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("MAESTRO: diagnostics")
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setFont(QFont("monospace"))
        refresh = QPushButton("Refresh", self)
        copy = QPushButton("Copy", self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(refresh, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        refresh.clicked.connect(self.refresh)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(760, 460)
        self.refresh()

    def refresh(self) -> None:
        try:
            text = diagnostics.format_text(diagnostics.collect())
        except Exception as exc:  # noqa: BLE001 (the view must open whatever is broken)
            text = f"Diagnostics could not be collected: {exc}"
        self.text.setPlainText(text)
