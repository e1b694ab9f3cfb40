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


def test_mosaic_equals_single_process_run(tiny_models, reference_run, finished_job):
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

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.blocks_skipped == len(done_before)
    assert report.blocks_run == TOTAL - len(done_before)
    after = block_stats(tmp_path)
    for name, stat in files_before.items():                  # finished blocks untouched
        assert after[name] == stat, name
    assert_equals_reference(report.vrt_path, reference_run)


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
