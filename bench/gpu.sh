#!/usr/bin/env bash
# GPU check of the engine (issue 14 item 5), for a machine with an NVIDIA GPU:
#   bash bench/gpu.sh [--size base] [--dates 5] [--batch 32]
# 1. exports MAESTRO-<size> (random weights, official preset) with the project's venv (torch
#    CPU; `make venv` first), 2. installs onnxruntime-gpu at the onnxruntime version pinned in
#    requirements/runtime.txt (with the CUDA/cuDNN wheels) into a throwaway venv, 3. runs the
#    CUDA execution provider in float32 and float16 with I/O binding and prints model FLOP/s /
#    MatMul peak of the same device and precision, float16 / float32 speed, device memory for
#    two batch sizes, and the CPU fallback check (bench/gpu_bench.py).
# Offline machine: put the wheels in a folder and set PIP_FIND_LINKS=<folder> PIP_NO_INDEX=1.
# Keep the throwaway venv and model with MAESTRO_GPU_BENCH_DIR=<folder> (reused when present).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZE=base DATES=5 BATCH=32
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE="$2"; shift 2;; --dates) DATES="$2"; shift 2;; --batch) BATCH="$2"; shift 2;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done
nvidia-smi -L || { echo "bench/gpu.sh: no NVIDIA GPU visible (nvidia-smi failed)" >&2; exit 1; }
ORT_VERSION="$(sed -n 's/^onnxruntime==\([0-9.]*\).*/\1/p' requirements/runtime.txt)"
ONNX_VERSION="$(sed -n 's/^onnx==\([0-9.]*\).*/\1/p' requirements/training.txt)"
WORK="${MAESTRO_GPU_BENCH_DIR:-$(mktemp -d -t maestro-gpu-XXXXXX)}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
MODEL="$WORK/model-$SIZE-${DATES}d-b$BATCH"
echo "onnxruntime-gpu==$ORT_VERSION, work folder $WORK, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -f "$MODEL/info.json" ]; then
  PYTHONPATH="$ROOT" "$PY" -m bench.gpu_bench prepare --out "$MODEL" --size "$SIZE" \
    --dates "$DATES" --batch "$BATCH" 2> >(grep -v -i warning >&2)
fi
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --upgrade pip
  "$WORK/venv/bin/python" -m pip install -q "onnxruntime-gpu[cuda,cudnn]==$ORT_VERSION" \
    "onnx==$ONNX_VERSION" "numpy<2"
fi
PYTHONPATH="$ROOT" "$WORK/venv/bin/python" -m bench.gpu_bench measure --dir "$MODEL"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
