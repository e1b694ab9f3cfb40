"""Batches in flight (engine.pipeline.InFlight, issue 14): several batches run at once and are
blended in tile order, so the map is the same as one batch after the other.

The end-to-end tests run the tiny models exported by our training code on real Slovenia
GeoTIFFs; the pipeline tests make the runs finish out of order on purpose."""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
import rasterio

from engine.api import RunOptions, run_model
from engine.errors import CancelledError, InputError
from engine.pipeline import InFlight


def test_results_come_back_in_item_order_when_runs_finish_out_of_order():
    rng = random.Random(3)
    delays = [rng.uniform(0.0, 0.02) for _ in range(40)]
    finished: list[int] = []
    lock = threading.Lock()
    running, most = [0], [0]

    def infer(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(delays[i])
        with lock:
            running[0] -= 1
            finished.append(i)
        return i * i

    with InFlight(lambda i: i, infer, in_flight=4) as pipeline:
        got = list(pipeline.results(range(40)))
    assert got == [(i, i * i) for i in range(40)]
    assert finished != sorted(finished), "the delays should have reordered the finishing runs"
    assert 2 <= most[0] <= 4                       # concurrent, and never more than asked


def test_prepare_runs_in_one_thread_in_item_order():
    threads, order = set(), []

    def prepare(i):
        threads.add(threading.get_ident())
        order.append(i)
        return i

    with InFlight(prepare, lambda i: i, in_flight=3) as pipeline:
        list(pipeline.results(range(25)))
    assert len(threads) == 1 and order == list(range(25))


def test_errors_surface_at_their_item_and_nothing_keeps_running():
    started = []

    def infer(i):
        started.append(i)
        if i == 5:
            raise ValueError("boom at 5")
        time.sleep(0.005)
        return i

    seen = []
    with pytest.raises(ValueError, match="boom at 5"):
        with InFlight(lambda i: i, infer, in_flight=2) as pipeline:
            for prepared, _ in pipeline.results(range(100)):
                seen.append(prepared)
    assert seen == [0, 1, 2, 3, 4]
    assert max(started) <= 5 + 3                  # bounded look-ahead, then stopped
    alive = [t.name for t in threading.enumerate() if t.name.startswith("maestro-")]
    assert alive == []


def test_in_flight_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        InFlight(lambda i: i, lambda i: i, in_flight=0)


def _read(path):
    with rasterio.open(path) as src:
        return src.read()


@pytest.mark.parametrize("task", ["segmentation", "classification", "embedding"])
def test_run_in_flight_equals_one_batch_after_the_other(tiny_models, scene, tmp_path, task):
    """Overlapping tiles (50 %) blend floating-point sums, whose result depends on their order:
    equality to the last bit means the batches were blended in tile order. Compared at equal
    batch sizes (onnxruntime's results move in the last bits with the batch's GEMM shapes)."""
    inputs = scene(rows=101, cols=100)
    runs = {}
    for in_flight, batch in [(1, 3), (3, 3), (1, 1), (4, 1)]:
        out = str(tmp_path / f"{task}-{in_flight}-{batch}.tif")
        conf = str(tmp_path / f"{task}-{in_flight}-{batch}-conf.tif")
        opts = RunOptions(tile_overlap_pct=50, batch_size=batch, threads=in_flight,
                          batches_in_flight=in_flight,
                          confidence_path=conf if task == "segmentation" else None)
        report = run_model(tiny_models[task], inputs, out, opts)
        assert f"{in_flight} batch(es) in flight, 1 thread(s) each" in "\n".join(report.messages)
        runs[(in_flight, batch)] = (_read(out), _read(conf) if task == "segmentation" else None)
    for (in_flight, batch), (data, conf) in runs.items():
        sequential = runs[(1, batch)]
        key = (in_flight, batch)
        np.testing.assert_array_equal(data, sequential[0], err_msg=f"{task} {key}")
        if conf is not None:
            np.testing.assert_array_equal(conf, sequential[1], err_msg=f"{task} {key}")


def test_auto_in_flight_splits_the_threads(tiny_models, scene, tmp_path):
    inputs = scene(rows=40, cols=40)
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "a.tif"),
                       RunOptions(device="cpu", threads=2))
    assert "2 batch(es) in flight, 1 thread(s) each" in "\n".join(report.messages)
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "b.tif"),
                       RunOptions(device="cpu", threads=2, batches_in_flight=1))
    assert "1 batch(es) in flight, 2 thread(s) each" in "\n".join(report.messages)


def test_bad_in_flight_is_refused_before_writing(tiny_models, scene, tmp_path):
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match="batches in flight must be at least 1"):
        run_model(tiny_models["segmentation"], scene(rows=20, cols=20), str(out),
                  RunOptions(batches_in_flight=-1))
    assert not out.exists()


def test_cancel_with_batches_in_flight_writes_nothing(tiny_models, scene, tmp_path):
    calls = [0]

    def is_cancelled():
        calls[0] += 1
        return calls[0] > 4

    out = tmp_path / "o.tif"
    with pytest.raises(CancelledError):
        run_model(tiny_models["segmentation"], scene(rows=101, cols=100), str(out),
                  RunOptions(tile_overlap_pct=50, batch_size=1, threads=2, batches_in_flight=2),
                  is_cancelled=is_cancelled)
    assert not out.exists()
    assert [t.name for t in threading.enumerate() if t.name.startswith("maestro-")] == []


def test_split_threads_between_batches_in_flight():
    from engine.pipeline import MAX_AUTO_IN_FLIGHT, split_threads

    assert split_threads(2) == (2, 1)                       # auto on the CPU: one thread each
    assert split_threads(8) == (MAX_AUTO_IN_FLIGHT, 2)      # capped, the rest per run
    assert split_threads(2, 1) == (1, 2)                    # one batch on every thread
    assert split_threads(3, 2) == (2, 1)
    assert split_threads(8, on_cpu=False) == (1, 8)         # an accelerator: one at a time
    with pytest.raises(ValueError, match="at least 1"):
        split_threads(2, 0)
