#!/usr/bin/env bash
# The whole test suite, headless, with real QGIS, onnxruntime, GDAL and torch.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$ROOT/scripts/with-env.sh" "$ROOT/.venv/bin/python" -m pytest "$@"
