"""QGIS 4 (Qt6 only): every Qt name the plugin uses resolves under PyQt6 as well as under
the installed QGIS 3.40's qgis.PyQt (PyQt5), and QGIS enums are written in their scoped form.

No QGIS 4 package exists for Debian, so PyQt6 comes from PyPI into a side venv
(scripts/pyqt6-venv.sh, made on first use) and scripts/qt_names.py runs there as a
subprocess: importing PyQt6 into this QGIS 3 / PyQt5 process would clash.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHECKER = os.path.join(ROOT, "scripts", "qt_names.py")


@functools.lru_cache(maxsize=1)
def _pyqt6_python() -> str:
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "pyqt6-venv.sh")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"could not make the PyQt6 venv:\n{run.stderr}"
    return run.stdout.strip().splitlines()[-1]


def _plugin_python_files() -> list[str]:
    from scripts.package import plugin_files

    return [p for p in plugin_files(ROOT) if p.endswith(".py")]


def _check(binding: str, files: list[str]) -> dict:
    python = _pyqt6_python() if binding == "PyQt6" else sys.executable
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if binding == "PyQt6":  # a bare venv: nothing of QGIS or the project's venv
        env.pop("PYTHONPATH", None)
    run = subprocess.run([python, CHECKER, "--binding", binding, *files], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


BAD_SOURCE = '''
from qgis.core import Qgis, QgsProcessing
from qgis.PyQt.QtCore import Qt, QRegExp
from qgis.PyQt.QtWidgets import QAction, QDesktopWidget, QDialogButtonBox, QSizePolicy
from PyQt5.QtCore import QTimer
ALIGN = Qt.AlignLeft
OK = QDialogButtonBox.Ok
GROW = QSizePolicy.Expanding
LEVEL = Qgis.Critical
SOURCE = QgsProcessing.TypeRaster
def show(dialog):
    return dialog.exec_()
GOOD = (Qt.AlignmentFlag.AlignLeft, QDialogButtonBox.StandardButton.Ok,
        QSizePolicy.Policy.Expanding, Qgis.MessageLevel.Critical,
        Qgis.ProcessingSourceType.Raster)
'''


@pytest.mark.parametrize("binding", ["PyQt6", "qgis"])
def test_checker_reports_the_qt5_only_names(binding, tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text(BAD_SOURCE)
    found = {".".join(f["chain"]) for f in _check(binding, [str(bad)])["failures"]}
    expected = {"Qt.AlignLeft", "QDialogButtonBox.Ok", "QSizePolicy.Expanding", "exec_",
                "QRegExp", "QDesktopWidget", "QTimer"}
    if binding == "PyQt6":
        expected |= {"QAction"}  # PyQt6 has QAction in QtGui only
    else:
        expected |= {"Qgis.Critical", "QgsProcessing.TypeRaster"}
    assert expected <= found, sorted(found)
    # the scoped forms on the last lines resolve
    assert not found & {"Qt.AlignmentFlag.AlignLeft", "QDialogButtonBox.StandardButton.Ok",
                        "QSizePolicy.Policy.Expanding", "Qgis.MessageLevel.Critical",
                        "Qgis.ProcessingSourceType.Raster"}, sorted(found)


@pytest.mark.parametrize("binding", ["PyQt6", "qgis"])
def test_every_qt_name_of_the_plugin_resolves(binding):
    files = _plugin_python_files()
    assert any(f.endswith("dock.py") for f in files)
    report = _check(binding, files)
    assert report["checked"] > 50  # the collector found the plugin's names
    failures = [f["text"] for f in report["failures"]]
    assert not failures, f"{len(failures)} names do not resolve under {binding}:\n" + "\n".join(
        failures)
