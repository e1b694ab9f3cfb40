"""``python -m engine`` run and info, as a server without QGIS would call them."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import rasterio

from tests.conftest import ROOT


def engine_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_run_and_info(tiny_models, scene, tmp_path):
    inputs = scene(rows=40, cols=36)
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    args = ["run", "--model", tiny_models["segmentation"], "--output", out, "--confidence", conf,
            "--overlap", "50", "--batch-size", "3", "--device", "cpu", "--threads", "1",
            "--date", f"s2={inputs['s2'][0]}=2015-06-01"]
    for m, paths in inputs.items():
        args += [a for p in paths for a in ("--input", f"{m}={p}")]
    proc = engine_cli(*args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider"] == "CPUExecutionProvider" and result["output"] == out
    assert result["dates"]["s2"][0] == "2015-06-01"
    assert "100%" in proc.stderr
    with rasterio.open(out) as src:
        assert src.shape == (40, 36) and set(np.unique(src.read(1))) <= {0, 1, 2, 255}
    assert os.path.exists(conf)

    info = engine_cli("info", tiny_models["segmentation"])
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert doc["task"] == "segmentation" and "CPUExecutionProvider" in doc["available_providers"]


def test_cli_error_is_one_clear_line(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    proc = engine_cli("run", "--model", tiny_models["segmentation"], "--output",
                      str(tmp_path / "o.tif"), "--input", f"s2={inputs['s2'][0]}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: InputError: model")
    assert "Traceback" not in proc.stderr
