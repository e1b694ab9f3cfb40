"""``python -m engine batch`` as a user runs it: a subprocess starting its own LocalCluster of
2 worker processes over a sub-area of the real Slovenia patch, then resuming."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT


def engine_cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_runs_a_sub_area_then_resumes(tiny_models, slovenia_inputs, reference_run, tmp_path):
    import rasterio
    from osgeo import gdal

    _, profile = reference_run
    t = profile["transform"]
    # Columns 20..84, rows 10..90 of the patch: the blocks are snapped out to the 16 px tile
    # grid (columns 16..96, rows 0..96), the mosaic is cut back to the asked area.
    bounds = [t.c + 20 * t.a, t.f + 90 * t.e, t.c + 84 * t.a, t.f + 10 * t.e]
    args = ["batch", "--model", tiny_models["segmentation"], "--output", str(tmp_path),
            "--block-px", "48", "--workers", "2", "--progress", "json", "--merged-cog",
            "--area-bounds", *map(str, bounds)]
    for path in slovenia_inputs["s2"]:
        args += ["--input", f"s2={path}"]
    args += ["--input", f"dem={slovenia_inputs['dem'][0]}"]
    run = engine_cli(*args)
    assert run.returncode == 0, run.stdout + run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "progress"]
    done = events[-1]
    assert done["event"] == "done" and done["workers"] == 2
    assert done["blocks_total"] == done["blocks_run"] == 4 and done["blocks_skipped"] == 0
    assert [(e["done"], e["total"]) for e in progress][-1] == (4, 4)
    s2_days = sorted(f"{n[3:7]}-{n[7:9]}-{n[9:11]}" for n in map(os.path.basename,
                                                                   slovenia_inputs["s2"]))
    assert done["dates"]["s2"] == s2_days and len(s2_days) == 5
    assert set(done["dates"]) == {"s2", "dem"}
    for path in (done["vrt"], done["cog"]):
        with rasterio.open(path) as src:
            mosaic = src.read(1)
            col, row = ~src.transform * (profile["transform"].c, profile["transform"].f)
        assert (round(col), round(row)) == (-20, -10) and mosaic.shape == (80, 64), path
        np.testing.assert_array_equal(mosaic, reference_run[0][10:90, 20:84])
    # The merged COG keeps the class names (in its .aux.xml) and no temporary's side file is
    # left; blocks are whole tiles past the area (columns 16..96, rows 0..96).
    cog = gdal.Open(done["cog"])                     # held: a band outlives no dataset
    band = cog.GetRasterBand(1)
    # GDAL 3.6's GeoTIFF driver reads the .aux.xml lazily, on GetDescription (as gdalinfo and
    # QGIS do) but not on GetCategoryNames alone.
    assert band.GetDescription() == "class"
    assert band.GetCategoryNames() == ["forest", "grassland", "artificial"]
    assert band.GetColorTable() is not None and band.GetNoDataValue() == 255
    band = cog = None
    assert sorted(os.listdir(tmp_path)) == ["blocks", "manifest.json", "mosaic.tif",
                                            "mosaic.tif.aux.xml", "mosaic.vrt"]
    with rasterio.open(os.path.join(tmp_path, "blocks", "r00000_c00000.tif")) as src:
        assert (round((src.bounds.left - t.c) / t.a), src.height) == (16, 48)

    again = engine_cli(*["text" if a == "json" else a for a in args])  # same job, text output
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 blocks computed, 4 skipped (already finished), 4 in all" in again.stdout
    assert "interrupted run" not in again.stdout
    # Nothing computed now: the dates are those recorded with the blocks of the first run.
    assert (f"Dates the model saw (all blocks): dem {', '.join(done['dates']['dem'])}; "
            f"s2 {', '.join(s2_days)}") in again.stdout
    assert sorted(os.listdir(tmp_path)) == ["blocks", "manifest.json", "mosaic.tif",
                                            "mosaic.tif.aux.xml", "mosaic.vrt"]


def test_cli_bad_input_is_a_clear_error(tiny_models, slovenia_inputs, tmp_path):
    run = engine_cli("batch", "--model", tiny_models["segmentation"], "--output", str(tmp_path),
                     "--input", f"s2={slovenia_inputs['s2'][0]}")
    assert run.returncode == 2
    assert "needs the modalities dem" in run.stderr
    assert not os.path.exists(tmp_path / "mosaic.vrt")
