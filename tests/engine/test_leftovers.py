"""Temporaries of killed runs: a new writer in the folder removes those of dead processes
and never those of a running one; the COG temporary is compressed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
from rasterio.transform import from_origin

from engine import writer as w


def _temp_name(base: str, pid: int, kind: str = "part") -> str:
    return f".{base}.{w.HOST_ID}-{pid}-abcd.{kind}.tif"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_writer_removes_only_dead_processes_temporaries(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        stale = [_temp_name("a.tif", dead), _temp_name("a.tif", dead, "cog"),
                 _temp_name("a.tif", dead, "cog") + ".ovr.tmp",
                 _temp_name("b.tif", dead) + ".aux.xml"]
        kept = [_temp_name("c.tif", live.pid),                       # a running process's
                f".d.tif.{'f' * 6 if w.HOST_ID != 'f' * 6 else 'e' * 6}-{dead}-abcd.part.tif",
                "e.tif", ".hidden.tif"]                              # another host's, others
        for name in stale + kept:
            (tmp_path / name).write_bytes(b"x")
        writer = w.RasterWriter(str(tmp_path / "new.tif"), 8, 8, 1, "uint8", "EPSG:32633",
                                from_origin(0, 8, 1, 1), cog=False)
        try:
            assert sorted(os.path.basename(p) for p in writer.removed_stale) == sorted(stale)
            names = set(os.listdir(tmp_path))
            assert set(kept) <= names and not set(stale) & names
            # Its own temporary carries this host and process.
            assert os.path.basename(writer._tmp).startswith(f".new.tif.{w.HOST_ID}-{os.getpid()}-")
        finally:
            writer.abort()
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()


def test_cog_temporary_is_compressed(tmp_path):
    writer = w.RasterWriter(str(tmp_path / "m.tif"), 2048, 2048, 1, "uint8", "EPSG:32633",
                            from_origin(0, 2048, 1, 1), cog=True)
    try:
        writer.write_rows(0, np.ones((1, 2048, 2048), dtype=np.uint8))
        writer._dst.close()
        # 4 MiB of pixels uncompressed; deflate makes the temporary a few KiB.
        assert os.path.getsize(writer._tmp) < 256 * 1024
    finally:
        writer.abort()
    assert os.listdir(tmp_path) == []
