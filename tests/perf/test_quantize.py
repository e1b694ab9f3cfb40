"""int8 variants (engine/quantize.py): the agreement check refuses a bad variant and writes a
good one, and the variant runs through the engine. Real models exported by our training code
(training.tiny) and the bundled model, real GeoTIFFs (the Slovenia patch, tests/engine)."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from tests.conftest import ROOT
from tests.engine.conftest import scene, slovenia  # noqa: F401 (fixtures)

BUNDLED = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
SAMPLE = os.path.join(ROOT, "resources", "sample")


def _sample_inputs():
    return {"s2": sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))),
            "dem": [os.path.join(SAMPLE, "dem.tif")]}


def _map(model, inputs, out):
    from engine.api import RunOptions, run_model

    report = run_model(model, inputs, out, RunOptions(device="cpu", threads=1, cog=False))
    with rasterio.open(out) as src:
        return report, src.read(1)


def test_cpu_int8_support_reads_the_flags(tmp_path):
    from engine.quantize import cpu_int8_support, int8_support_message

    with_vnni = tmp_path / "a"
    with_vnni.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    without = tmp_path / "b"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert cpu_int8_support(str(with_vnni)) is True
    assert cpu_int8_support(str(without)) is False
    assert cpu_int8_support(str(tmp_path / "missing")) is None
    assert "slower" in int8_support_message(False)


def test_bundled_model_variant_agrees_and_runs_through_the_engine(tmp_path):
    """On the bundled sample: written with >= 99 % agreement, recorded in the metadata, and
    the engine's map with the variant equals float32's on >= 99 % of the pixels."""
    from engine.contract import read_model_metadata
    from engine.quantize import QuantizeOptions, quantize_model, read_quantisation

    out = str(tmp_path / "bundled.int8.onnx")
    report = quantize_model(BUNDLED, _sample_inputs(), out, QuantizeOptions(threads=1))
    assert report.agreement_pct >= 99.0 and os.path.exists(out)
    assert {c.method for c in report.candidates} == {"static", "static-qdq", "dynamic"}
    record = read_quantisation(out)
    assert record["method"] == report.method
    assert record["agreement"]["value"] >= 99.0 and record["agreement"]["threshold"] == 99.0
    assert record["source_model"] == os.path.basename(BUNDLED)
    assert read_quantisation(BUNDLED) is None
    assert read_model_metadata(out).name == read_model_metadata(BUNDLED).name
    _, ref = _map(BUNDLED, _sample_inputs(), str(tmp_path / "f32.tif"))
    rep8, int8 = _map(out, _sample_inputs(), str(tmp_path / "int8.tif"))
    assert rep8.tiles > 0
    valid = ref != 255
    assert (int8[valid] == ref[valid]).mean() >= 0.99
    assert ((int8 == 255) == (ref == 255)).all()


def test_threshold_above_100_refuses_and_writes_nothing(tiny_models, scene, tmp_path):  # noqa: F811
    from engine.quantize import QuantisationError, QuantizeOptions, quantize_model

    out = tmp_path / "never.onnx"
    with pytest.raises(QuantisationError, match=r"no int8 variant .* >= 100.01 %"):
        quantize_model(tiny_models["segmentation"], scene(rows=64, cols=64), str(out),
                       QuantizeOptions(method="dynamic", min_agreement_pct=100.01, threads=1))
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".maestro-quantize")]


def test_damaged_calibration_is_refused_good_one_written(tiny_models, scene, tmp_path):  # noqa: F811
    """Static calibration on random noise instead of the tiles (activation ranges that do not
    match the data) is refused; the same conversion calibrated on the real tiles passes the
    same threshold, and the variant runs through the engine."""
    from engine.quantize import (QuantisationError, QuantizeOptions, capture_feeds,
                                 quantize_feeds, split_windows)

    model = tiny_models["segmentation"]
    inputs = scene()
    windows = capture_feeds(model, inputs, tiles=64, windows=9, threads=1)
    calibration, check = split_windows(windows)
    rng = np.random.default_rng(0)
    damaged = [{k: (10 * rng.standard_normal(v.shape).astype(v.dtype) if k in ("s2", "dem")
                    else v) for k, v in b.items()} for b in calibration]
    options = QuantizeOptions(method="static", min_agreement_pct=98.0, threads=1)
    bad = tmp_path / "bad.onnx"
    with pytest.raises(QuantisationError, match=r"static \d+\.\d+ %"):
        quantize_feeds(model, damaged, check, str(bad), options)
    assert not bad.exists()
    good = tmp_path / "good.onnx"
    report = quantize_feeds(model, calibration, check, str(good), options)
    assert good.exists() and report.agreement_pct >= 98.0 and report.method == "static"
    rep, out = _map(str(good), inputs, str(tmp_path / "map.tif"))
    assert rep.tiles > 0 and set(np.unique(out)) <= {0, 1, 2, 255}


def test_quantising_a_variant_again_is_refused(tmp_path):
    from engine.quantize import QuantisationError, QuantizeOptions, quantize_model

    first = str(tmp_path / "a.int8.onnx")
    quantize_model(BUNDLED, _sample_inputs(), first,
                   QuantizeOptions(method="dynamic", threads=1, tiles=16))
    with pytest.raises(QuantisationError, match="already an int8 variant"):
        quantize_model(first, _sample_inputs(), str(tmp_path / "b.onnx"),
                       QuantizeOptions(method="dynamic", threads=1, tiles=16))


def test_cli_quantize(tmp_path):
    out = str(tmp_path / "cli.int8.onnx")
    args = [sys.executable, "-m", "engine", "quantize", "--model", BUNDLED, "--output", out,
            "--method", "dynamic", "--threads", "1", "--tiles", "16"]
    for m, paths in _sample_inputs().items():
        args += [a for p in paths for a in ("--input", f"{m}={p}")]
    proc = subprocess.run(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["method"] == "dynamic" and result["agreement_pct"] >= 99.0
    assert "VNNI" in proc.stderr and os.path.exists(out)
    no = str(tmp_path / "no.onnx")
    refused = subprocess.run([no if a == out else a for a in args] + ["--min-agreement", "100.01"],
                             cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "QuantisationError" in refused.stderr
    assert not os.path.exists(no)
