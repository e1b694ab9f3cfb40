"""One Processing algorithm run in the background for the dock: Processing's own task runner
(``QgsProcessingAlgRunnerTask``) with a feedback that keeps the error and log lines, and a
single ``done(ok, results, message)`` signal in the main thread.

Progress: the task's ``progressChanged`` (0-100). Cancel: :meth:`AlgorithmRun.cancel` (the
runner cancels the feedback; the MAESTRO algorithms poll it and stop, writing nothing).
The context has the current project (layer ids in the parameters resolve) unless
``use_project=False``: then every layer is opened from its path inside the task.
"""
from __future__ import annotations

from qgis.core import (Qgis, QgsApplication, QgsMessageLog, QgsProcessingAlgRunnerTask,
                       QgsProcessingContext, QgsProcessingFeedback, QgsProject)
from qgis.PyQt.QtCore import QObject, pyqtSignal


class KeepingFeedback(QgsProcessingFeedback):
    """Feedback that keeps what the algorithm reports (called from the worker thread; only
    appends to lists)."""

    def __init__(self):
        super().__init__()
        self.errors: list[str] = []
        self.lines: list[str] = []

    def reportError(self, error, fatalError=False):
        self.errors.append(str(error))

    def pushInfo(self, info):
        self.lines.append(str(info))


def _plain_error(errors: list[str]) -> str:
    """The algorithm's own message, without Processing's 'Error encountered while running'
    wrapper ('' when none was reported)."""
    for text in reversed(errors):
        text = text.strip()
        if not text:
            continue
        for prefix in ("Error encountered while running",):
            if text.startswith(prefix) and ":" in text:
                text = text.split(":", 1)[1].strip()
        return text
    return ""


class AlgorithmRun(QObject):
    """Run ``algorithm_id`` with ``parameters`` as a QGIS background task.

    Attributes:
        task: the QgsProcessingAlgRunnerTask (None before :meth:`start`).
        feedback: the :class:`KeepingFeedback`.
        cancelled: True once :meth:`cancel` was called.
    Signals:
        progress(float): 0-100.
        done(bool ok, dict results, str message): the results (ok) or the error message.
    """

    progress = pyqtSignal(float)
    done = pyqtSignal(bool, dict, str)

    def __init__(self, algorithm_id: str, parameters: dict, description: str = "",
                 parent=None, use_project: bool = True):
        super().__init__(parent)
        self.algorithm_id = algorithm_id
        self.parameters = dict(parameters)
        self.description = description
        self.task = None
        self.cancelled = False
        self.finished = False
        self.feedback = KeepingFeedback()
        self.context = QgsProcessingContext()
        if use_project:
            # layer ids in the parameters resolve; but a file path then also resolves to the
            # project's layer of that source, which the task's thread would share with the
            # map canvas: runs whose parameters are all file paths pass use_project=False and
            # open their own layers in the task.
            self.context.setProject(QgsProject.instance())

    def start(self) -> None:
        """Create the task and hand it to QGIS's task manager.

        Raises:
            ValueError: the algorithm is not registered (the plugin's provider is not loaded).
        """
        registry = QgsApplication.processingRegistry()
        algorithm = registry.algorithmById(self.algorithm_id)
        if algorithm is None:
            raise ValueError(f"the Processing algorithm {self.algorithm_id} is not available "
                             "(is the MAESTRO provider enabled?)")
        self.task = QgsProcessingAlgRunnerTask(algorithm, self.parameters, self.context,
                                               self.feedback)
        if self.description:
            self.task.setDescription(self.description)
        self.task.progressChanged.connect(self.progress.emit)
        self.task.executed.connect(self._executed)
        # a task cancelled before it started ends without 'executed'
        self.task.taskTerminated.connect(lambda: self._executed(False, {}))
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self) -> None:
        self.cancelled = True
        self.feedback.cancel()
        if self.task is not None:
            self.task.cancel()

    def _executed(self, ok, results) -> None:
        if self.finished:
            return
        self.finished = True
        self.task = None  # the task manager deletes it
        if self.feedback.lines or self.feedback.errors:  # the algorithm's log, for the curious
            QgsMessageLog.logMessage(
                f"{self.algorithm_id}:\n" + "\n".join(self.feedback.lines + self.feedback.errors),
                "MAESTRO", Qgis.MessageLevel.Info)
        if ok and not self.cancelled:
            self.done.emit(True, dict(results or {}), "")
            return
        message = ("cancelled" if self.cancelled or self.feedback.isCanceled()
                   else _plain_error(self.feedback.errors) or f"{self.algorithm_id} failed")
        if self.cancelled:
            self.cancelled = True
        self.done.emit(False, {}, message)
