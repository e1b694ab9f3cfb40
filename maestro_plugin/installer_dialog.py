"""The "Install dependencies" dialog: shows the plan, runs pip with the Python QGIS runs
(QProcess, so QGIS stays responsive) and streams pip's output into the dialog."""
from __future__ import annotations

from qgis.PyQt.QtCore import QProcess, Qt, pyqtSignal
from qgis.PyQt.QtGui import QFont
from qgis.PyQt.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QLabel, QLineEdit,
                                 QPlainTextEdit, QPushButton, QVBoxLayout)

from . import deps


class InstallDependenciesDialog(QDialog):
    """Args:
        plan: an ``deps.InstallPlan`` (default: ``plan_factory(train)``).
        parent: the parent widget.
        train: tick 'Also install the packages for training your own classes' at start.
        plan_factory: ``callable(train: bool) -> InstallPlan``, called when that box is
            toggled (default: ``deps.plan_install(train=train)``).
    """

    finished_install = pyqtSignal(bool)   # True when pip succeeded and nothing is missing

    def __init__(self, plan: deps.InstallPlan | None = None, parent=None, train: bool = False,
                 plan_factory=None):
        super().__init__(parent)
        self.setWindowTitle("MAESTRO: install dependencies")
        self.plan_factory = plan_factory or (lambda train_: deps.plan_install(train=train_))
        self.plan = plan or self.plan_factory(train)
        self.process: QProcess | None = None
        self.exit_code: int | None = None
        self.train_check = QCheckBox("Also install the packages for training your own classes "
                                     "(" + ", ".join(deps.TRAIN_PACKAGES) + ")", self)
        self.train_check.setToolTip("Optional: the dock's Train part and maestro:train_classes "
                                    "need scikit-learn and onnx; nothing else does.")
        self.train_check.setChecked(train)
        self.status_label = QLabel(self.status_text(), self)
        self.status_label.setWordWrap(True)
        self.notes_label = QLabel("\n".join(self.plan.notes), self)
        self.notes_label.setWordWrap(True)
        self.command_edit = QLineEdit(deps.manual_command(self.plan), self)
        self.command_edit.setReadOnly(True)
        self.command_edit.setCursorPosition(0)
        self.command_edit.setToolTip("The same as one command, to run by hand")
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setFont(QFont("monospace"))
        missing = deps.missing_dependencies()
        self.install_button = QPushButton("Install" if missing else "Reinstall", self)
        self.install_button.setEnabled(self.plan.command is not None)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.addButton(self.install_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.install_button.clicked.connect(self.start)
        self.train_check.toggled.connect(self.set_train)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(self.train_check)
        layout.addWidget(self.notes_label)
        self.where_label = QLabel(self._where_text(), self)
        self.where_label.setWordWrap(True)
        self.where_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.where_label)
        layout.addWidget(QLabel("The same by hand (pip --target, allowed on Debian/Ubuntu):",
                                self))
        layout.addWidget(self.command_edit)
        layout.addWidget(self.log_view, 1)
        layout.addWidget(self.buttons)
        self.resize(720, 420)

    def _where_text(self) -> str:
        return (f"QGIS's Python: {self.plan.python or 'not found'}\n"
                f"Installs into: {self.plan.target}")

    def set_train(self, train: bool) -> None:
        """Tick or untick the optional training packages: the plan, its notes and the
        command are made again."""
        if self.train_check.isChecked() != bool(train):
            self.train_check.setChecked(bool(train))   # comes back here through toggled
            return
        self.plan = self.plan_factory(bool(train))
        self.notes_label.setText("\n".join(self.plan.notes))
        self.command_edit.setText(deps.manual_command(self.plan))
        self.command_edit.setCursorPosition(0)
        self.where_label.setText(self._where_text())
        running = (self.process is not None
                   and self.process.state() != QProcess.ProcessState.NotRunning)
        self.install_button.setEnabled(self.plan.command is not None and not running)
        self.status_label.setText(self.status_text())

    def _missing(self) -> list[str]:
        """Package names missing for what the dialog is set to install."""
        names = [m for m, _ in deps.missing_dependencies()]
        if self.train_check.isChecked():
            names += [deps.pip_name(m) for m, _ in deps.missing_train_dependencies()]
        return names

    def status_text(self) -> str:
        """One sentence: what is missing, or what is installed and what Install would do."""
        missing = self._missing()
        if missing:
            return "Missing: " + ", ".join(missing) + "."
        have = deps.installed_onnxruntime()
        pinned = next((p.split("==")[1] for p in self.plan.packages
                       if p.startswith("onnxruntime") and "==" in p), None)
        if pinned is None or have == pinned:
            return f"Everything MAESTRO needs is installed (onnxruntime {have}). Nothing to do."
        return (f"Everything MAESTRO needs is installed (onnxruntime {have}); Reinstall puts "
                f"the tested version {pinned} into MAESTRO's folder.")

    def append(self, text: str) -> None:
        self.log_view.appendPlainText(text.rstrip("\n"))

    def start(self) -> None:
        """Run pip (asynchronously); output goes to the log view as it comes."""
        running = (self.process is not None
                   and self.process.state() != QProcess.ProcessState.NotRunning)
        if not self.plan.command or running:
            return
        import os

        os.makedirs(self.plan.target, exist_ok=True)
        self.install_button.setEnabled(False)
        self.exit_code = None
        self.append("$ " + deps.manual_command(self.plan))
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._done)
        self.process.errorOccurred.connect(self._error)
        self.process.start(self.plan.command[0], list(self.plan.command[1:]))

    def _read(self) -> None:
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        if data:
            self.append(data)

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.append(f"Could not start {self.plan.command[0]}")
            self._done(-1, None)

    def _done(self, exit_code, _status=None) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = int(exit_code)
        if self.process is not None and exit_code != -1:
            self._read()  # the last lines
        deps.add_deps_dir_to_path(self.plan.target)
        missing = self._missing()
        ok = self.exit_code == 0 and not missing
        if self.exit_code == 0:
            self.append("pip finished." + (" Everything imports now." if not missing else
                                           " Still missing: " + ", ".join(missing)))
        else:
            self.append(f"pip failed (exit code {self.exit_code}).")
        self.status_label.setText(
            "Installed: MAESTRO can run now (the panel is ready, no restart needed)." if ok
            else "Missing: " + ", ".join(missing))
        self.install_button.setEnabled(True)
        self.finished_install.emit(ok)

    def wait(self, msecs: int = 300000) -> bool:
        """Block until pip ends (tests; the GUI never calls this)."""
        from qgis.PyQt.QtCore import QCoreApplication

        if self.process is None:
            return True
        self.process.waitForFinished(msecs)
        QCoreApplication.processEvents()
        return self.exit_code is not None
