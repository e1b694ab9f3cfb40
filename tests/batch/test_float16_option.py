"""``float16`` of the batch runner (``python -m engine batch --float16``, maestro:batch_segment
FLOAT16): every block task gets it, the job records it, and on the CPU (where the engine
ignores it) the mosaic is the single-process map. A real Dask cluster of 2 worker processes,
the tiny model exported by our training code, the real Slovenia patch (tests/batch/conftest.py)."""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

from engine.api import RunOptions
from engine.batch import BatchOptions, run_batch
from engine.batch.manifest import JobMismatchError
from tests.batch.helpers import run_block_recording_options

BLOCK_PX = 48  # 101 x 100 px -> 3 x 3 blocks


def test_float16_reaches_every_block_and_is_part_of_the_job(tiny_models, slovenia_inputs,
                                                            reference_run, dask_cluster,
                                                            tmp_path):
    import rasterio

    seen = tmp_path / "options"
    seen.mkdir()
    out = tmp_path / "job"
    opts = BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address,
                        run=RunOptions(float16=True, device="cpu"))
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(out), opts,
                       block_fn=functools.partial(run_block_recording_options, str(seen)))
    assert report.blocks_run == 9
    given = [json.loads((seen / name).read_text()) for name in sorted(os.listdir(seen))]
    assert len(given) == 9 and all(o["float16"] is True for o in given)
    assert all("batches_in_flight" not in o for o in given)      # the engine's auto
    with open(out / "manifest.json") as f:
        assert json.load(f)["job"]["engine_options"] == {"tile_overlap_pct": 25,
                                                         "float16": True}
    with rasterio.open(report.vrt_path) as src:
        np.testing.assert_array_equal(src.read(1), reference_run[0])
    # the same job without float16 is another job (its pixels differ on a GPU)
    with pytest.raises(JobMismatchError, match="differs in: engine_options"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(out),
                  BatchOptions(block_px=BLOCK_PX, scheduler=dask_cluster.scheduler_address))


def test_cli_float16_flag(tiny_models):
    from engine.cli import build_parser

    base = ["batch", "--model", tiny_models["segmentation"], "--output", "o", "--input", "s2=a"]
    assert build_parser().parse_args(base + ["--float16"]).float16 is True
    assert build_parser().parse_args(base).float16 is None
    sub = build_parser()._subparsers._group_actions[0].choices
    assert "--float16" in sub["batch"].format_help()
    assert "--batches-in-flight" not in sub["batch"].format_help()      # workers: auto
    assert "--batches-in-flight" in sub["run"].format_help()
