"""``python -m engine run --batches-in-flight N --float16`` and ``python -m engine info`` of an
int8 variant: real runs of the tiny model exported by our training code on the real Slovenia
patch (tests/engine/conftest.py), a real int8 variant made by engine/quantize.py."""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import rasterio

from tests.engine.test_cli import _input_args, assert_one_error_line, engine_cli


def _run_in_process(monkeypatch, argv):
    """``engine.cli.main(argv)`` in this process, the real ``run_model`` wrapped to keep the
    RunOptions it was given; returns (exit status, [RunOptions])."""
    import engine.api
    from engine import cli

    seen = []
    real = engine.api.run_model

    def recording(model, inputs, output, options, **kwargs):
        seen.append(options)
        return real(model, inputs, output, options, **kwargs)

    monkeypatch.setattr(engine.api, "run_model", recording)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return cli.main(argv), seen
    finally:  # main() installs its SIGINT/SIGTERM handlers: give pytest back its own
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_batches_in_flight_below_one_is_refused_naming_the_option(value, tiny_models, scene,
                                                                  tmp_path):
    inputs = scene(rows=20, cols=20)
    out = tmp_path / "o.tif"
    proc = engine_cli("run", "--model", tiny_models["segmentation"], "--output", str(out),
                      "--batches-in-flight", value, *_input_args(inputs))
    assert_one_error_line(proc, 2, f"error: InputError: --batches-in-flight {value} must be "
                                   "at least 1")
    assert not out.exists()


def test_batches_in_flight_not_a_number_is_a_usage_error(tiny_models, tmp_path):
    proc = engine_cli("run", "--model", tiny_models["segmentation"], "--output",
                      str(tmp_path / "o.tif"), "--batches-in-flight", "two")
    assert proc.returncode == 2 and "--batches-in-flight: invalid int value: 'two'" in proc.stderr


def test_options_reach_run_options_and_the_map_does_not_depend_on_them(monkeypatch, tiny_models,
                                                                        scene, tmp_path, capsys):
    """Default (auto, float16 from the environment), 1 and 2 batches in flight, float16 on the
    CPU (ignored there): the RunOptions carry what was asked, the run's log says what the
    runner did with them (engine/runner.py), and the maps are equal."""
    monkeypatch.delenv("MAESTRO_FLOAT16", raising=False)
    inputs = scene(rows=64, cols=64)
    base = ["run", "--model", tiny_models["segmentation"], "--device", "cpu", "--threads", "2",
            "--batch-size", "2", "--no-cog", *_input_args(inputs)]
    cases = {"auto": [], "one": ["--batches-in-flight", "1"], "two": ["--batches-in-flight", "2"],
             "float16": ["--float16", "--batches-in-flight", "2"]}
    maps, options, logs = {}, {}, {}
    for name, extra in cases.items():
        out = str(tmp_path / f"{name}.tif")
        rc, seen = _run_in_process(monkeypatch, [*base, "--output", out, *extra])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        assert json.loads(captured.out)["tiles"] > 1
        options[name], logs[name] = seen[0], captured.err
        with rasterio.open(out) as src:
            maps[name] = src.read(1)
    assert (options["auto"].batches_in_flight, options["auto"].float16) == (None, None)
    assert (options["one"].batches_in_flight, options["one"].float16) == (1, None)
    assert (options["two"].batches_in_flight, options["two"].float16) == (2, None)
    assert (options["float16"].batches_in_flight, options["float16"].float16) == (2, True)
    for name, told in (("auto", "2 batch(es) in flight, 1 thread(s) each"),
                       ("one", "1 batch(es) in flight, 2 thread(s) each"),
                       ("two", "2 batch(es) in flight, 1 thread(s) each"),
                       ("float16", "2 batch(es) in flight, 1 thread(s) each")):
        assert told in logs[name], (name, logs[name])
    assert "float16 is used on CUDA only" in logs["float16"]
    assert "float16" not in logs["two"]
    assert set(np.unique(maps["auto"])) <= {0, 1, 2, 255}
    for name in ("one", "two", "float16"):
        np.testing.assert_array_equal(maps[name], maps["auto"], err_msg=name)


def test_help_describes_the_options():
    proc = engine_cli("run", "--help")
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    assert "--batches-in-flight N" in text and "threads/N onnxruntime threads" in text
    assert "min(threads, 4) on CPU, 1 on CUDA" in text
    assert "--float16" in text and "ignored on CPU" in text


def test_info_of_a_float32_model_says_not_quantised(tiny_models):
    proc = engine_cli("info", tiny_models["segmentation"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["precision"] == "float32 (not quantised)"
    assert doc["quantisation"] is None and "int8_on_this_cpu" not in doc


def test_info_of_an_int8_variant_shows_its_quantisation_record(tiny_models, scene, tmp_path):
    """A real dynamic int8 variant of the tiny model, calibrated and checked on the Slovenia
    patch as in tests/perf/test_quantize.py; info shows the record quantize wrote."""
    from engine.quantize import (QuantizeOptions, cpu_int8_support, int8_support_message,
                                 quantize_model, read_quantisation)

    variant = str(tmp_path / "tiny.int8.onnx")
    report = quantize_model(tiny_models["segmentation"], scene(rows=64, cols=64), variant,
                            QuantizeOptions(method="dynamic", threads=1, tiles=16))
    proc = engine_cli("info", variant)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    record = doc["quantisation"]
    assert record == read_quantisation(variant)
    assert doc["precision"] == "int8 (dynamic, QOperator (DynamicQuantizeMatMul))"
    assert record["method"] == "dynamic" and record["calibration"] is None
    assert record["agreement"]["value"] == pytest.approx(report.agreement_pct, abs=1e-4)
    assert record["agreement"]["metric"] == "% of pixels with equal argmax"
    assert record["agreement"]["threshold"] == 99.0
    assert record["agreement"]["check_tiles"] == report.check_tiles > 0
    assert record["speed_vs_float32_at_conversion"] == pytest.approx(report.speedup, rel=1e-2)
    assert record["source_model"] == "tiny-segmentation.onnx"
    support = cpu_int8_support()
    assert doc["int8_on_this_cpu"] == {"int8_dot_product_cpu": support,
                                       "note": int8_support_message(support)}
    assert ("will likely be slower" in proc.stderr) == (support is False)
    assert doc["task"] == "segmentation"        # the rest of the metadata as for float32
