#!/usr/bin/env bash
# Run a command with the project's environment: the venv first on PATH (qgis_process
# sees the venv's packages only that way), the private QGIS profile with the plugin
# enabled, and Qt headless.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.qgis/bin:$ROOT/.venv/bin:$PATH"
export VIRTUAL_ENV="$ROOT/.venv"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
export QGIS_PLUGINPATH="$ROOT/.qgis/plugins"
export QGIS_CUSTOM_CONFIG_PATH="$ROOT/.qgis/profile"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Quiet Qt's runtime-dir warning when running as root.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cd "$ROOT"
exec "$@"
