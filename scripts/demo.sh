#!/usr/bin/env bash
# `make demo`: the main job through qgis_process.
# Until the default model and sample land, it exports a tiny model with our own training
# code and runs maestro:model_info on it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$ROOT/out"
bash "$ROOT/scripts/with-env.sh" "$ROOT/.venv/bin/python" -c \
  "from training.tiny import export_tiny; export_tiny('out/tiny-segmentation.onnx')"
bash "$ROOT/scripts/with-env.sh" qgis_process run maestro:model_info -- \
  MODEL="$ROOT/out/tiny-segmentation.onnx" OUTPUT="$ROOT/out/tiny-segmentation.json"
