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


def _input_args(inputs):
    return [a for m, ps in inputs.items() for p in ps for a in ("--input", f"{m}={p}")]


def assert_one_error_line(proc, rc, start):
    assert proc.returncode == rc, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_refuses_unsafe_outputs_and_bad_bounds_up_front(tiny_models, scene, tmp_path):
    """Every case: exit 2, one 'error:' line naming the problem, no file created anywhere
    (the run folder, its parent: an empty --output once left a stray .aux.xml there), every
    input unchanged."""
    import hashlib

    inputs = scene(rows=20, cols=20)
    work = tmp_path / "cwd"
    work.mkdir()
    s2 = inputs["s2"][0]
    os.symlink(s2, tmp_path / "alias.tif")
    digests = {p: hashlib.sha256(open(p, "rb").read()).hexdigest()
               for ps in inputs.values() for p in ps}
    before = {d: sorted(os.listdir(d)) for d in (tmp_path, work)}
    base = ["run", "--model", tiny_models["segmentation"], *_input_args(inputs)]
    cases = [
        (["--output", str(tmp_path / "map.png")], "error: OutputError: --output '.*map.png' is not a GeoTIFF"),
        (["--output", ""], "error: OutputError: --output: no file given"),
        (["--output", str(tmp_path / "o.tif"), "--confidence", str(tmp_path / "c.jpg")],
         "error: OutputError: --confidence '.*c.jpg' is not a GeoTIFF"),
        (["--output", str(tmp_path / "alias.tif")], "error: OutputError: --output .* is the s2 input"),
        (["--output", str(work / ".." / os.path.basename(s2))], "error: OutputError: .* is the s2 input"),
        (["--output", str(tmp_path / "o.tif"), "--confidence", str(work / ".." / "o.tif")],
         "error: OutputError: --output .* and --confidence .* are the same file"),
        (["--output", str(tmp_path / "o.tif"), "--bounds", "10", "0", "5", "20"],
         "error: InputError: --bounds: XMIN 10 must be less than XMAX 5"),
        (["--output", str(tmp_path / "o.tif"), "--bounds", "0", "20", "5", "10"],
         "error: InputError: --bounds: YMIN 20 must be less than YMAX 10"),
        (["--output", str(tmp_path / "o.tif"), "--bounds", "nan", "0", "5", "20"],
         "error: InputError: --bounds .*nan is not a finite number"),
        (["--output", str(tmp_path / "o.tif"), "--overlap", "90"],
         "error: InputError: --overlap 90.0 must be a percentage from 0 to 75"),
    ]
    import re

    env = dict(os.environ, PYTHONPATH=ROOT)
    for extra, pattern in cases:
        proc = subprocess.run([sys.executable, "-m", "engine", *base, *extra], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert_one_error_line(proc, 2, "error: ")
        assert re.match(pattern, proc.stderr.strip()), (extra, proc.stderr)
    assert {d: sorted(os.listdir(d)) for d in (tmp_path, work)} == before
    assert {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in digests} == digests


def test_cli_sigterm_is_a_clean_cancel(tiny_models, slovenia, tmp_path):
    """SIGTERM in the middle of a run: exit 130, one line naming the signal, and nothing left
    beside the output (no hidden temporary, no final name)."""
    import signal

    from tests.engine.conftest import downsample2, grid, write_tif

    (tmp_path / "in").mkdir()
    big = np.tile(slovenia["s2"][0], (1, 4, 4))                    # 10 x 404 x 400
    s2 = write_tif(tmp_path / "in" / "S2_20150711.tif", big, grid(), nodata=0)
    dem = write_tif(tmp_path / "in" / "dem.tif",
                    downsample2(np.tile(slovenia["dem"], (4, 4))).astype("float32"), grid(20.0))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--model",
                             tiny_models["segmentation"], "--input", f"s2={s2}",
                             "--input", f"dem={dem}",
                             "--output", str(out_dir / "map.tif"), "--confidence",
                             str(out_dir / "conf.tif"), "--overlap", "75", "--batch-size", "1",
                             "--threads", "1", "--device", "cpu"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = ""
    while "tile " not in seen and proc.poll() is None:            # the first progress line
        seen += proc.stderr.readline()
    assert any(n.endswith(".part.tif") for n in os.listdir(out_dir)), os.listdir(out_dir)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 130, seen + rest
    assert rest.strip().splitlines()[-1].startswith("error: CancelledError: stopped by SIGTERM")
    assert "Traceback" not in rest
    assert os.listdir(out_dir) == []


def test_cli_unexpected_error_is_one_line_with_the_traceback_in_the_debug_log(
        tiny_models, scene, tmp_path):
    """A truncated GeoTIFF (header intact) fails only when its tiles are read: one line
    naming the file, exit status 2 (engine error) or 3 (unexpected), never a traceback on
    stderr, no output."""
    inputs = scene(rows=40, cols=36)
    import rasterio

    src = inputs["s2"][0]
    with rasterio.open(src) as ds:
        profile, data = ds.profile, ds.read()
    profile.update(compress=None, tiled=False)
    broken = str(tmp_path / "S2_20150820_broken.tif")
    with rasterio.open(broken, "w", **profile) as dst:
        dst.write(data)
    os.truncate(broken, os.path.getsize(broken) // 2)
    out = tmp_path / "o.tif"
    proc = engine_cli("run", "--model", tiny_models["segmentation"], "--output", str(out),
                      "--input", f"s2={broken}", "--input", f"dem={inputs['dem'][0]}", "--quiet")
    assert proc.returncode in (2, 3), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and broken in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("o.tif", ".o.tif"))]


# --------------------------------------------------------------- property-based parsing
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_date_and_input_arguments_never_raise_anything_but_a_usage_error(text):
    """Any string given to --date / --input is parsed or refused with argparse's own error
    (a usage message), never another exception."""
    import argparse
    import datetime

    from engine.cli_common import parse_date as _parse_date
    from engine.cli_common import parse_input as _parse_input

    for parse in (_parse_date, _parse_input):
        try:
            result = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert str(exc)
            continue
        assert isinstance(result, tuple) and all(result)
        if parse is _parse_date:
            assert isinstance(result[2], datetime.date)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4))
def test_bounds_are_accepted_exactly_when_finite_and_ordered(values):
    import math

    from engine.cli import check_bounds
    from engine.errors import InputError

    ok = all(math.isfinite(v) for v in values) and values[0] < values[2] and values[1] < values[3]
    try:
        check_bounds(values)
        assert ok
    except InputError as exc:
        assert not ok and "--bounds" in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=__import__("datetime").date(1, 1, 1)), st.text(min_size=1).filter(
    lambda s: "=" not in s), st.text(min_size=1))
def test_date_argument_round_trips(day, modality, path):
    from engine.cli_common import parse_date as _parse_date

    assert _parse_date(f"{modality}={path}={day.isoformat()}") == (modality.lower(), path, day)
