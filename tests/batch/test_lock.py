"""One batch driver per output folder; a dead driver's lock and temporaries are taken over;
an output folder that is a file is refused."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from engine.batch import BatchArea, BatchOptions, run_batch
from engine.batch.lock import LOCK_NAME, FolderLock, FolderLockedError
from engine.errors import OutputError
from engine.writer import HOST_ID
from tests.conftest import ROOT

HOLD = ("import sys, time; sys.path.insert(0, {root!r}); "
        "from engine.batch.lock import FolderLock; FolderLock({folder!r}).acquire(); "
        "print('locked', flush=True); time.sleep(120)")


def hold_lock(folder):
    """A separate driver-like process holding the folder's lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(root=ROOT, folder=str(folder))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_driver_is_refused_naming_the_running_job(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(FolderLockedError) as err:
            FolderLock(str(tmp_path)).acquire()
        message = str(err.value)
        assert f"pid {holder.pid} on {socket.gethostname()}, started 20" in message
        assert "Another batch job is running in" in message
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_driver_is_taken_over(tmp_path):
    holder = hold_lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert os.path.exists(tmp_path / LOCK_NAME)              # the killed driver left it
    lines = []
    lock = FolderLock(str(tmp_path), lines.append).acquire()
    try:
        assert lock.previous["pid"] == holder.pid
        assert len(lines) == 1 and f"pid {holder.pid}" in lines[0] and "no longer running" in lines[0]
        with open(tmp_path / LOCK_NAME) as f:
            assert json.load(f)["pid"] == os.getpid()
        with pytest.raises(FolderLockedError, match=f"pid {os.getpid()}"):
            FolderLock(str(tmp_path)).acquire()               # held: even in this process
    finally:
        lock.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)
    FolderLock(str(tmp_path)).acquire().release()            # free again


def test_run_batch_refuses_a_locked_folder_and_a_file_before_any_work(
        tiny_models, slovenia_inputs, tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid}"):
            run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                      BatchOptions(block_px=48, workers=1))
        assert sorted(os.listdir(tmp_path)) == sorted([LOCK_NAME, "blocks"])
        assert os.listdir(tmp_path / "blocks") == []
    finally:
        holder.kill()
        holder.wait()
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("keep me")
    with pytest.raises(OutputError, match="is an existing file, not a folder"):
        run_batch(tiny_models["segmentation"], slovenia_inputs, str(a_file), BatchOptions())
    assert a_file.read_text() == "keep me"


def test_cli_output_folder_that_is_a_file_is_one_line(tiny_models, slovenia_inputs, tmp_path):
    a_file = tmp_path / "out"
    a_file.write_text("keep me")
    args = [sys.executable, "-m", "engine", "batch", "--model", tiny_models["segmentation"],
            "--output", str(a_file), "--input", f"dem={slovenia_inputs['dem'][0]}"]
    args += [a for p in slovenia_inputs["s2"] for a in ("--input", f"s2={p}")]
    proc = subprocess.run(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: OutputError: output folder '{a_file}' is an existing file, not a folder: "
        "choose a folder (it is created when missing)"]
    assert a_file.read_text() == "keep me"


def test_next_run_removes_a_dead_runs_temporaries(tiny_models, slovenia_inputs, dask_cluster,
                                                  tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    leftovers = [tmp_path / "manifest.json.tmp", tmp_path / "mosaic.tif.tmp.tif",
                 tmp_path / "mosaic.tif.tmp.tif.ovr.tmp",
                 blocks / f".b00000.tif.{HOST_ID}-{dead.pid}-abcd.part.tif",
                 blocks / f".b00000.tif.{HOST_ID}-{dead.pid}-abcd.cog.tif.ovr.tmp"]
    for p in leftovers:
        p.write_bytes(b"x" * 1000)
    lines = []
    report = run_batch(tiny_models["segmentation"], slovenia_inputs, str(tmp_path),
                       BatchOptions(block_px=48, scheduler=dask_cluster.scheduler_address),
                       area=BatchArea(block_extents=[(465181.05, 5079950.0, 465500.0,
                                                      5080254.0)]),
                       log=lines.append)
    assert report.blocks_run == 1
    assert not [p for p in leftovers if p.exists()]
    assert any("Removed 5 temporary file(s) left by an interrupted run" in x for x in lines), lines
    assert not (tmp_path / LOCK_NAME).exists()                # released at the end
