#!/usr/bin/env bash
# A side venv with PyQt6 from PyPI for tests/plugin/test_qt6_names.py (QGIS 4 is Qt6 only;
# importing PyQt6 into a QGIS 3 / PyQt5 process would clash, so the check runs there as a
# subprocess). Idempotent: a second run only compares the stamp with the requirements file.
# Prints the venv's python.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.cache/pyqt6-venv"
REQ="$ROOT/requirements/pyqt6-check.txt"
STAMP="$VENV/.installed"
if [ ! -f "$STAMP" ] || ! cmp -s "$REQ" "$STAMP"; then
  rm -rf "$VENV"
  mkdir -p "$ROOT/.cache"
  /usr/bin/python3 -m venv "$VENV" >&2
  # The machine-wide pip constraints are for the project's own venv; this venv holds PyQt6 only.
  PIP_CONSTRAINT= "$VENV/bin/python" -m pip install -q -r "$REQ" >&2
  "$VENV/bin/python" -c "import PyQt6.QtCore, PyQt6.QtGui, PyQt6.QtWidgets" >&2
  cp "$REQ" "$STAMP"
fi
echo "$VENV/bin/python"
