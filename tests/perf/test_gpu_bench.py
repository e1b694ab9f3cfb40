"""bench/gpu_bench.py (what bench/gpu.sh runs on a GPU machine) runs end to end on the CPU
provider (--cpu-smoke): export, I/O binding, peaks, ratios, the CPU fallback check."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _bench(*args):
    return subprocess.run([sys.executable, "-m", "bench.gpu_bench", *args], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=600)


def test_gpu_bench_runs_on_cpu(tmp_path):
    out = str(tmp_path / "model")
    prep = _bench("prepare", "--out", out, "--size", "tiny", "--dates", "2", "--batch", "2")
    assert prep.returncode == 0, prep.stderr
    info = json.loads(prep.stdout.strip().splitlines()[-1])
    assert info["flops_per_batch"] > 1e9 and info["embed_dim"] == 192
    run = _bench("measure", "--dir", out, "--cpu-smoke", "--rounds", "1", "--matmul-n", "256")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cpu_fallback"]["provider"] == "CPUExecutionProvider"
    assert result["cpu_fallback"]["equal_argmax_vs_float32"] == 1.0
    for name in ("float32", "float16"):
        assert result[name]["model_over_peak"] > 0 and result[name]["tiles_s"] > 0
    assert "float16 / float32 speed" in run.stdout and "CPU fallback" in run.stdout
