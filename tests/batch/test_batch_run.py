"""The batch runner on a real Dask cluster of 2 worker processes, real onnxruntime sessions of
the tiny model exported by our training code, and the real Slovenia Sentinel-2 + DEM patch.

The mosaic of blocks must equal one single-process ``run_model`` over the whole patch, pixel for
pixel (nodata included); resumes must redo exactly what is unfinished."""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

from engine.batch import BatchOptions, run_batch
from engine.batch.manifest import JobMismatchError, sha256_file
from engine.errors import CancelledError
from tests.batch.conftest import NODATA_COLS, NODATA_ROWS
from tests.batch.helpers import run_block_killing_worker_once

BLOCK_PX = 32  # 101 x 100 px -> 4 x 4 blocks, the last row and column of blocks 5 and 4 px


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


def test_mosaic_equals_single_process_run(tiny_models, slovenia_inputs, reference_run,
                                          dask_cluster, tmp_path):
    progress = []
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                       BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                                    merged_cog=True),
                       progress=lambda done, total, msg: progress.append((done, total, msg)))
    assert (report.blocks_total, report.blocks_run, report.blocks_skipped) == (16, 16, 0)
    assert report.workers == 2
    assert_equals_reference(report.vrt_path, reference_run)
    assert_equals_reference(report.cog_path, reference_run)
    # Every block is its own file, recorded done with its checksum.
    doc = manifest_of(tmp_path)
    assert len(doc["blocks"]) == 16
    for rec in doc["blocks"].values():
        assert rec["status"] == "done"
        assert sha256_file(os.path.join(tmp_path, rec["file"])) == rec["sha256"]
    assert doc["job"]["model"]["sha256"] == sha256_file(tiny_models["segmentation"])
    # Progress reached 16/16 with a throughput in the message.
    assert progress[-1][:2] == (16, 16) and "blocks/h" in progress[-1][2]
    # No temporary file is left behind (the engine's .aux.xml sidecars hold category names).
    names = os.listdir(tmp_path / "blocks")
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
                  is_cancelled=lambda: max(seen, default=0) >= 5)
    done_before = {i for i, r in manifest_of(tmp_path)["blocks"].items() if r["status"] == "done"}
    assert 5 <= len(done_before) < 16
    assert not os.path.exists(tmp_path / "mosaic.vrt")   # no complete-looking output
    files_before = {n: s for n, s in block_stats(tmp_path).items()
                    if n[:-4] in done_before}

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.blocks_skipped == len(done_before)
    assert report.blocks_run == 16 - len(done_before)
    after = block_stats(tmp_path)
    for name, stat in files_before.items():                  # finished blocks untouched
        assert after[name] == stat, name
    assert_equals_reference(report.vrt_path, reference_run)


def test_corrupt_and_missing_blocks_are_detected_and_redone(
        tiny_models, slovenia_inputs, reference_run, dask_cluster, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address)
    run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    blocks = tmp_path / "blocks"
    corrupt, missing = blocks / "r00001_c00002.tif", blocks / "r00003_c00000.tif"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF                              # one flipped byte
    corrupt.write_bytes(bytes(data))
    missing.unlink()
    untouched = {n: s for n, s in block_stats(tmp_path).items() if n != corrupt.name}

    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts)
    assert report.redone == {"r00001_c00002": "corrupt", "r00003_c00000": "missing"}
    assert (report.blocks_run, report.blocks_skipped) == (2, 14)
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
    assert len(killed["done"]) >= 3
    assert report.workers == 2
    assert (report.blocks_run, report.failed) == (16, {})
    doc = manifest_of(out)
    assert all(r["status"] == "done" for r in doc["blocks"].values())
    rec = doc["blocks"][killed["block"]]                     # redone by a live worker
    assert not rec["worker"].endswith(f":{killed['pid']}")
    for block_id, mtime_ns in killed["done"].items():         # finished blocks untouched
        assert os.stat(out / doc["blocks"][block_id]["file"]).st_mtime_ns == mtime_ns, block_id
    assert_equals_reference(report.vrt_path, reference_run)


def test_other_parameters_are_refused_then_restart_starts_clean(
        tiny_models, slovenia_inputs, dask_cluster, tmp_path):
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address)
    extents = [(465181.05, 5079950.0, 465500.0, 5080254.0)]
    run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), opts,
              block_extents=extents)
    other = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                         tile_overlap_pct=50)
    with pytest.raises(JobMismatchError, match="differs in: engine_options"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), other,
                  block_extents=extents)
    with pytest.raises(JobMismatchError, match="differs in: model"):
        run_batch(tiny_models["classification"], slovenia_inputs, str(tmp_path), opts,
                  block_extents=extents)
    other.restart = True
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path), other,
                       block_extents=extents)
    assert (report.blocks_run, report.blocks_skipped) == (1, 0)
    assert manifest_of(tmp_path)["job"]["engine_options"]["tile_overlap_pct"] == 50
