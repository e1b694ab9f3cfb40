"""The batch runner on a real Dask cluster of 2 worker processes, real onnxruntime sessions of
the tiny model exported by our training code, and the real Slovenia Sentinel-2 + DEM patch.

The mosaic of blocks must equal one single-process ``run_model`` over the whole patch, pixel for
pixel (nodata included); resumes must redo exactly what is unfinished."""
from __future__ import annotations

import functools
import json
import os
import shutil

import numpy as np
import pytest

from engine.api import RunOptions
from engine.batch import BatchArea, BatchOptions, BlocksFailedError, run_batch
from engine.batch.manifest import JobMismatchError, sha256_file
from engine.errors import CancelledError
from tests.batch.conftest import NODATA_COLS, NODATA_ROWS
from tests.batch.helpers import (run_block_failing_for, run_block_killing_worker_once,
                                 run_block_waiting_for_manifest)

BLOCK_PX = 48  # 101 x 100 px -> 3 x 3 blocks, the last row and column of blocks 5 and 4 px
TOTAL = 9


def read_mosaic(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), src.profile


def assert_equals_reference(vrt_path, reference_run):
    mosaic, profile = read_mosaic(vrt_path)
    whole, ref_profile = reference_run
    assert mosaic.shape == whole.shape == (101, 100)
    assert profile["transform"].almost_equals(ref_profile["transform"])
    assert profile["nodata"] == ref_profile["nodata"] == 255
    assert (whole[NODATA_ROWS, NODATA_COLS] == 255).all()      # the nodata hole is nodata
    assert (whole != 255).sum() > 9000                          # and the rest is classified
    np.testing.assert_array_equal(mosaic, whole)


def s2_days(slovenia_inputs):
    """The ISO dates of the patch's Sentinel-2 files (named s2_YYYYMMDD.tif)."""
    names = sorted(os.path.basename(p) for p in slovenia_inputs["s2"])
    return [f"{n[3:7]}-{n[7:9]}-{n[9:11]}" for n in names]


def temporaries(folder):
    """Files of the output folder (not blocks/) other than the job's outputs."""
    return sorted(set(os.listdir(folder)) - {"blocks", "manifest.json", "mosaic.vrt", "mosaic.tif",
                                             "mosaic.tif.aux.xml"})


def manifest_of(folder):
    with open(os.path.join(folder, "manifest.json")) as f:
        return json.load(f)


def block_stats(folder):
    """block file -> (inode, mtime_ns): changes if the file is rewritten."""
    blocks = os.path.join(folder, "blocks")
    return {n: (os.stat(os.path.join(blocks, n)).st_ino, os.stat(os.path.join(blocks, n)).st_mtime_ns)
            for n in os.listdir(blocks) if n.endswith(".tif")}


@pytest.fixture(scope="module")
def finished_job(tiny_models, slovenia_inputs, dask_cluster, tmp_path_factory):
    """A whole-patch job run once on the 2-worker cluster: (folder, report, progress calls)."""
    folder = tmp_path_factory.mktemp("finished_job")
    progress = []
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(folder),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                                    merged_cog=True),
                       progress=lambda done, total, msg: progress.append((done, total, msg)))
    return folder, report, progress


def test_mosaic_equals_single_process_run(tiny_models, slovenia_inputs, reference_run,
                                          finished_job):
    folder, report, progress = finished_job
    assert (report.blocks_total, report.blocks_run, report.blocks_skipped) == (TOTAL, TOTAL, 0)
    assert report.workers == 2
    assert_equals_reference(report.vrt_path, reference_run)
    assert_equals_reference(report.cog_path, reference_run)
    # Every block is its own file, recorded done with its checksum.
    doc = manifest_of(folder)
    assert len(doc["blocks"]) == TOTAL
    for rec in doc["blocks"].values():
        assert rec["status"] == "done"
        assert sha256_file(os.path.join(folder, rec["file"])) == rec["sha256"]
    assert doc["job"]["model"]["sha256"] == sha256_file(tiny_models["segmentation"])
    # Progress reached 9/9 with a throughput in the message.
    assert progress[-1][:2] == (TOTAL, TOTAL) and "blocks/h" in progress[-1][2]
    # No temporary file is left behind (the engine's .aux.xml sidecars hold category names).
    names = os.listdir(folder / "blocks")
    assert sorted(n for n in names if n.endswith(".tif")) == sorted(f"{i}.tif" for i in doc["blocks"])
    assert all(n.endswith((".tif", ".tif.aux.xml")) for n in names), names
    # The mosaic keeps the model's class names (QGIS shows them).
    from osgeo import gdal
    assert gdal.Open(report.vrt_path).GetRasterBand(1).GetCategoryNames() == [
        "forest", "grassland", "artificial"]
    # The merged COG too (in mosaic.tif.aux.xml), and the temporary COG left no side file
    # (it used to leave mosaic.tif.tmp.tif.aux.xml, and the COG lost its class names).
    assert temporaries(folder) == [] and os.path.isfile(folder / "mosaic.tif.aux.xml")
    cog = gdal.Open(report.cog_path)
    band = cog.GetRasterBand(1)
    assert band.GetDescription() == "class"           # (also makes GDAL 3.6 read the .aux.xml)
    assert band.GetCategoryNames() == ["forest", "grassland", "artificial"]
    band = cog = None
    # Dates the model saw: every date of the patch, recorded with each block.
    assert report.dates["s2"] == s2_days(slovenia_inputs) and len(report.dates["dem"]) == 1
    assert all(rec["dates"] == report.dates for rec in doc["blocks"].values())


def test_resumed_finished_job_reports_the_dates_of_earlier_runs(
        tiny_models, slovenia_inputs, dask_cluster, finished_job, tmp_path):
    """Re-running a finished job computes nothing: its dates come from the manifest (they
    used to be ``{}``), and a --merged-cog run left nothing the next run calls a leftover."""
    shutil.copytree(finished_job[0], tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    logs = []
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                                    merged_cog=True), log=logs.append)
    assert (report.blocks_run, report.blocks_skipped) == (0, TOTAL)
    assert report.dates == finished_job[1].dates and report.dates["s2"]
    assert not [m for m in logs if "interrupted run" in m], logs
    assert temporaries(tmp_path) == []


def test_manifest_without_dates_is_resumed_and_says_dates_are_unknown(
        tiny_models, slovenia_inputs, dask_cluster, finished_job, tmp_path):
    """A manifest written before blocks recorded their dates still resumes; its blocks add no
    date, and the log says so."""
    shutil.copytree(finished_job[0], tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    doc = manifest_of(tmp_path)
    for rec in doc["blocks"].values():
        del rec["dates"]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    logs = []
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address),
                       log=logs.append)
    assert (report.blocks_run, report.blocks_skipped, report.dates) == (0, TOTAL, {})
    assert [m for m in logs if "dates the model saw are not known" in m
            and f"none for the {TOTAL} blocks" in m], logs


def test_resume_after_interrupted_run_redoes_nothing_finished(
        tiny_models, slovenia_inputs, reference_run, dask_cluster, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address)
    seen = []
    with pytest.raises(CancelledError, match="re-run the same command to resume"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts,
                  progress=lambda done, total, msg: seen.append(done),
                  is_cancelled=lambda: max(seen, default=0) >= 3)
    done_before = {i for i, r in manifest_of(tmp_path)["blocks"].items() if r["status"] == "done"}
    assert 3 <= len(done_before) < TOTAL
    assert not os.path.exists(tmp_path / "mosaic.vrt")   # no complete-looking output
    files_before = {n: s for n, s in block_stats(tmp_path).items()
                    if n[:-4] in done_before}

    dates_before = {i: manifest_of(tmp_path)["blocks"][i]["dates"] for i in done_before}
    assert all(d["s2"] == s2_days(slovenia_inputs) for d in dates_before.values())

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.blocks_skipped == len(done_before)
    assert report.blocks_run == TOTAL - len(done_before)
    after = block_stats(tmp_path)
    for name, stat in files_before.items():                  # finished blocks untouched
        assert after[name] == stat, name
    assert_equals_reference(report.vrt_path, reference_run)
    # The report's dates are those of the blocks of both runs (kept in the manifest).
    blocks = manifest_of(tmp_path)["blocks"]
    assert {i: blocks[i]["dates"] for i in done_before} == dates_before
    assert report.dates["s2"] == s2_days(slovenia_inputs) and len(report.dates["dem"]) == 1


def test_corrupt_and_missing_blocks_are_detected_and_redone(
        tiny_models, slovenia_inputs, reference_run, dask_cluster, finished_job, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address)
    shutil.copytree(finished_job[0], tmp_path, dirs_exist_ok=True, copy_function=shutil.copy2)
    blocks = tmp_path / "blocks"
    corrupt, missing = blocks / "r00001_c00002.tif", blocks / "r00002_c00000.tif"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF                              # one flipped byte
    corrupt.write_bytes(bytes(data))
    missing.unlink()
    untouched = {n: s for n, s in block_stats(tmp_path).items() if n != corrupt.name}

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.redone == {"r00001_c00002": "corrupt", "r00002_c00000": "missing"}
    assert (report.blocks_run, report.blocks_skipped) == (2, TOTAL - 2)
    after = block_stats(tmp_path)
    assert all(after[n] == s for n, s in untouched.items())
    assert_equals_reference(report.vrt_path, reference_run)


def test_killed_worker_loses_nothing_and_job_completes(
        tiny_models, slovenia_inputs, reference_run, tmp_path):
    """Default path: run_batch starts its own LocalCluster of 2 worker processes. Once 3
    blocks are recorded, one task SIGKILLs its worker; Dask reschedules that task, the finished
    blocks are not computed again and the job completes."""
    marker = tmp_path / "killed.json"
    out = tmp_path / "out"
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(out),
                       BatchOptions(block_px=BLOCK_PX, workers=2, retries=2),
                       block_fn=functools.partial(run_block_killing_worker_once, str(marker), 3))
    killed = json.loads(marker.read_text())                  # a worker really died
    assert len(killed["done"]) >= 3, killed
    assert report.workers == 2
    assert (report.blocks_run, report.failed) == (TOTAL, {}), (report, killed)
    doc = manifest_of(out)
    assert all(r["status"] == "done" for r in doc["blocks"].values()), (doc, killed)
    rec = doc["blocks"][killed["block"]]                     # redone by a live worker
    assert not rec["worker"].endswith(f":{killed['pid']}"), (rec, killed)
    for block_id, mtime_ns in killed["done"].items():         # finished blocks untouched
        now_ns = os.stat(out / doc["blocks"][block_id]["file"]).st_mtime_ns
        assert now_ns == mtime_ns, (block_id, now_ns, doc["blocks"][block_id], killed)
    assert_equals_reference(report.vrt_path, reference_run)


def test_manifest_records_finished_blocks_while_the_driver_waits(
        tiny_models, slovenia_inputs, dask_cluster, tmp_path):
    """The cause of the killed-worker test's rare failure: the manifest's throttled save ran
    only when a result arrived, so blocks finished less than a second before a quiet spell
    stayed unrecorded on disk until the next result (a killed driver lost them; the test's
    killing task, waiting for 3 recorded blocks, waited 180 s and died too early). Here the
    first block waits for 7 others to be recorded (its worker may hold one more task behind
    it): it only can when the driver writes its pending records during the wait."""
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                                    retries=0),
                       block_fn=functools.partial(run_block_waiting_for_manifest,
                                                  "r00000_c00000", TOTAL - 2, 30))
    assert (report.blocks_run, report.failed) == (TOTAL, {})


def test_other_parameters_are_refused_then_restart_starts_clean(
        tiny_models, slovenia_inputs, dask_cluster, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address)
    extents = [(465181.05, 5079950.0, 465500.0, 5080254.0)]
    run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts,
              area=BatchArea(block_extents=extents))
    other = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                         run=RunOptions(tile_overlap_pct=50))
    with pytest.raises(JobMismatchError, match="differs in: engine_options"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), other,
                  area=BatchArea(block_extents=extents))
    with pytest.raises(JobMismatchError, match="differs in: model"):
        run_batch(tiny_models["classification"], slovenia_inputs, str(tmp_path), opts,
                  area=BatchArea(block_extents=extents))
    other.restart = True
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), other,
                       area=BatchArea(block_extents=extents))
    assert (report.blocks_run, report.blocks_skipped) == (1, 0)
    assert manifest_of(tmp_path)["job"]["engine_options"]["tile_overlap_pct"] == 50


def test_failed_block_is_recorded_then_redone(tiny_models, slovenia_inputs, reference_run,
                                              dask_cluster, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address, retries=1)
    with pytest.raises(BlocksFailedError, match="1 of 9 blocks failed after 1 retries"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts,
                  block_fn=functools.partial(run_block_failing_for, "r00001_c00001"))
    blocks = manifest_of(tmp_path)["blocks"]
    assert blocks["r00001_c00001"]["status"] == "failed"
    assert "simulated failure of block r00001_c00001" in blocks["r00001_c00001"]["error"]
    assert sum(r["status"] == "done" for r in blocks.values()) == TOTAL - 1
    assert not os.path.exists(tmp_path / "mosaic.vrt")       # nothing looks complete

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.redone == {"r00001_c00001": "failed"}
    assert (report.blocks_run, report.blocks_skipped) == (1, TOTAL - 1)
    assert_equals_reference(report.vrt_path, reference_run)


def test_classification_blocks_fit_together(tiny_models, slovenia_inputs, dask_cluster, tmp_path):
    """One pixel per 16 px tile: blocks start on tile multiples, so their outputs abut and the
    mosaic equals a whole-raster run of the classification model (float32 scores: to 1e-6,
    since tiles batched differently are summed in another order by onnxruntime)."""
    import rasterio

    from engine.api import RunOptions, run_model

    model = tiny_models["classification"]
    whole = str(tmp_path / "whole.tif")
    run_model(model, slovenia_inputs, whole, RunOptions(threads=1))
    report = run_batch(model, slovenia_inputs, str(tmp_path / "batch"),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address))
    with rasterio.open(whole) as a, rasterio.open(report.vrt_path) as b:
        assert (a.count, a.shape) == (b.count, b.shape) == (3, (7, 7))
        assert a.transform.almost_equals(b.transform)
        np.testing.assert_allclose(b.read(), a.read(), rtol=0, atol=1e-6)


def test_report_dates_are_the_union_over_blocks_of_both_runs(
        tiny_models, slovenia_inputs, dask_cluster, tmp_path):
    """The last Sentinel-2 date is nodata over the bottom-right of the patch (rows and columns
    from 24: block r00001_c00001 and the tiles it reads), so that block does not see it while
    the blocks of the top row do. Run 1 fails that block; run 2 computes only it: the report
    must still name the last date, seen by blocks of run 1 (run 2's blocks alone lack it)."""
    import rasterio

    days = s2_days(slovenia_inputs)
    last = max(slovenia_inputs["s2"])
    holed = tmp_path / "in" / os.path.basename(last)
    holed.parent.mkdir()
    with rasterio.open(last) as src:
        data, profile = src.read(), src.profile
        descriptions = src.descriptions
    data[:, 24:, 24:] = 0
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    inputs = {"s2": [p for p in slovenia_inputs["s2"] if p != last] + [str(holed)],
              "dem": slovenia_inputs["dem"]}
    out = tmp_path / "out"
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address, retries=0)
    with pytest.raises(BlocksFailedError):
        run_batch(tiny_models["segmentation"], inputs, str(out), opts,
                  block_fn=functools.partial(run_block_failing_for, "r00001_c00001"))
    report = run_batch(tiny_models["segmentation"], inputs, str(out), opts)
    assert (report.blocks_run, report.blocks_skipped) == (1, TOTAL - 1)
    blocks = manifest_of(out)["blocks"]
    assert blocks["r00001_c00001"]["dates"]["s2"] == days[:-1]      # this run's block only
    assert blocks["r00000_c00000"]["dates"]["s2"] == days           # a block of run 1
    assert report.dates["s2"] == days


def test_mosaic_is_cut_to_the_asked_area(slovenia_inputs, reference_run, finished_job, tmp_path):
    """build_vrt on the real block files: bounds off the pixel grid cut the mosaic to the
    smallest window of whole pixels covering them; bounds covering it all cut nothing."""
    import rasterio

    from engine.batch.mosaic import build_vrt

    folder = finished_job[0]
    files = [os.path.join(folder, r["file"]) for r in manifest_of(folder)["blocks"].values()]
    t = reference_run[1]["transform"]
    # Columns 20.5..84.2, rows 10.7..90.01 -> whole pixels 20..85, 10..91.
    bounds = (t.c + 20.5 * t.a, t.f + 90.01 * t.e, t.c + 84.2 * t.a, t.f + 10.7 * t.e)
    vrt = build_vrt(str(tmp_path / "cut.vrt"), files, bounds)
    with rasterio.open(vrt) as src:
        col, row = ~src.transform * (t.c, t.f)
        assert (round(col), round(row), src.width, src.height) == (-20, -10, 65, 81)
        np.testing.assert_array_equal(src.read(1), reference_run[0][10:91, 20:85])
    whole = (t.c - 100, t.f - 2000, t.c + 2000, t.f + 100)
    with rasterio.open(build_vrt(str(tmp_path / "whole.vrt"), files, whole)) as src:
        assert src.shape == (101, 100)
        np.testing.assert_array_equal(src.read(1), reference_run[0])


def test_classification_mosaic_of_a_sub_area_is_whole_tiles(tiny_models, slovenia_inputs,
                                                            dask_cluster, tmp_path):
    """One output pixel per 16 px tile: the cut keeps the whole tiles covering the area (the
    mosaic of a sub-area is the matching window of the whole-area run)."""
    import rasterio

    from engine.api import RunOptions, run_model

    model = tiny_models["classification"]
    whole = str(tmp_path / "whole.tif")
    run_model(model, slovenia_inputs, whole, RunOptions(threads=1))
    with rasterio.open(whole) as src:
        t, ref = src.transform, src.read()
    # Output pixels (tiles) 1..4 in x, 2..5 in y: bounds inside them, off their edges.
    bounds = (t.c + 1.3 * t.a, t.f + 4.6 * t.e, t.c + 4.2 * t.a, t.f + 2.1 * t.e)
    report = run_batch(model, slovenia_inputs, str(tmp_path / "batch"),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address),
                       area=BatchArea(bounds=bounds))
    with rasterio.open(report.vrt_path) as src:
        col, row = ~src.transform * (t.c, t.f)
        assert (round(col), round(row), src.width, src.height) == (-1, -2, 4, 3)
        np.testing.assert_allclose(src.read(), ref[:, 2:5, 1:5], rtol=0, atol=1e-6)
