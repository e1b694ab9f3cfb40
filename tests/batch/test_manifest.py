"""The manifest on its own: atomic saves, job checks, and detection of missing or corrupt
block files (real files, real sha256)."""
from __future__ import annotations

import json
import os

import pytest

from engine.batch.manifest import JobMismatchError, Manifest, sha256_file

JOB = {"model": {"sha256": "ab" * 32}, "inputs": {"s2": [{"path": "/x.tif"}]}}


def make_job_folder(tmp_path):
    (tmp_path / "blocks").mkdir()
    m = Manifest.open(str(tmp_path), JOB)
    for name, payload in (("a", b"block a"), ("b", b"block b"), ("c", b"block c")):
        path = tmp_path / "blocks" / f"{name}.tif"
        path.write_bytes(payload)
        m.record(name, status="done", file=f"blocks/{name}.tif", sha256=sha256_file(str(path)))
    m.save()
    return m


def test_save_is_atomic_and_reopens(tmp_path):
    make_job_folder(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["blocks", "manifest.json"]   # no temp file left
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["format"] == "maestro-batch-manifest" and doc["job"] == JOB
    again = Manifest.open(str(tmp_path), JOB)
    assert again.finished(["a", "b", "c", "d"]) == {"a", "b", "c"}


def test_missing_and_corrupt_files_are_not_finished(tmp_path):
    make_job_folder(tmp_path)
    (tmp_path / "blocks" / "a.tif").write_bytes(b"block A")             # same size, other bytes
    (tmp_path / "blocks" / "b.tif").unlink()
    m = Manifest.open(str(tmp_path), JOB)
    assert m.finished(["a", "b", "c"]) == {"c"}
    assert (m.blocks["a"]["redo_reason"], m.blocks["b"]["redo_reason"]) == ("corrupt", "missing")
    assert m.blocks["a"]["status"] == m.blocks["b"]["status"] == "pending"


def test_other_job_is_refused_unless_restart(tmp_path):
    make_job_folder(tmp_path)
    other = dict(JOB, model={"sha256": "cd" * 32})
    with pytest.raises(JobMismatchError, match=r"differs in: model\)"):
        Manifest.open(str(tmp_path), other)
    fresh = Manifest.open(str(tmp_path), other, restart=True)
    assert fresh.blocks == {} and os.listdir(tmp_path / "blocks") == []  # old blocks removed


def test_unreadable_manifest_is_refused_with_its_path(tmp_path):
    (tmp_path / "manifest.json").write_text("{ truncated")
    with pytest.raises(JobMismatchError, match="not a readable batch manifest"):
        Manifest.open(str(tmp_path), JOB)
    assert Manifest.open(str(tmp_path), JOB, restart=True).blocks == {}


def test_throttled_save_skips_rewrites_within_the_interval(tmp_path):
    m = make_job_folder(tmp_path)
    before = (tmp_path / "manifest.json").stat().st_mtime_ns
    m.record("a", seconds=1.0)
    m.save(force=False)                                   # < 1 s after the last save: skipped
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == before
    m.save()
    assert json.loads((tmp_path / "manifest.json").read_text())["blocks"]["a"]["seconds"] == 1.0


def test_dates_are_the_union_over_done_blocks_and_survive_a_reopen(tmp_path):
    m = make_job_folder(tmp_path)                         # a, b, c done, no dates (old format)
    assert m.dates(["a", "b", "c"]) == ({}, ["a", "b", "c"])
    m.record("a", dates={"s2": ["2015-07-31", "2015-07-11"], "dem": ["2015-07-11"]})
    m.record("b", dates={"s2": ["2015-08-20", "2015-07-11"]})
    m.record("d", status="pending", dates={"s2": ["2020-01-01"]})   # not done: not counted
    m.save()
    again = Manifest.open(str(tmp_path), JOB)
    assert again.dates(["a", "b", "c", "d"]) == (
        {"s2": ["2015-07-11", "2015-07-31", "2015-08-20"], "dem": ["2015-07-11"]}, ["c"])
    assert again.dates(["b"]) == ({"s2": ["2015-07-11", "2015-08-20"]}, [])
