"""Output path safety (engine/paths.py): an output that resolves to an input or to the other
output is refused before any work, whatever the path spelling (symlink, hard link, ``..``,
case on case-insensitive systems, the source of a VRT input)."""
from __future__ import annotations

import hashlib
import os

import pytest

from engine import paths
from engine.api import RunOptions, run_model
from engine.errors import OutputError


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_same_file_through_symlink_hardlink_and_dotdot(tmp_path):
    a = tmp_path / "a.tif"
    a.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    os.symlink(a, tmp_path / "link.tif")
    os.link(a, tmp_path / "hard.tif")
    assert paths.same_file(str(tmp_path / "link.tif"), str(a))
    assert paths.same_file(str(tmp_path / "hard.tif"), str(a))
    assert paths.same_file(str(tmp_path / "sub" / ".." / "a.tif"), str(a))
    assert not paths.same_file(str(tmp_path / "b.tif"), str(a))
    # Not yet existing outputs: compared by their resolved path.
    assert paths.same_file(str(tmp_path / "new.tif"), str(tmp_path / "sub" / ".." / "new.tif"))


def test_case_variants_on_a_case_insensitive_system(tmp_path, monkeypatch):
    a, b = str(tmp_path / "Map.tif"), str(tmp_path / "map.TIF")
    monkeypatch.setattr(paths, "CASE_INSENSITIVE", False)
    assert not paths.same_file(a, b)
    monkeypatch.setattr(paths, "CASE_INSENSITIVE", True)
    assert paths.same_file(a, b)
    with pytest.raises(OutputError, match="are the same file"):
        paths.check_outputs({"OUTPUT": a, "CONFIDENCE": b})


def test_check_outputs_names_both_paths(tmp_path):
    src = tmp_path / "s2.tif"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match=r"output '.*s2.tif' is the s2 input '.*s2.tif'"):
        paths.check_outputs({"output": str(src)}, [("s2 input", str(src))])
    with pytest.raises(OutputError, match="output '.*o.tif' and confidence '.*o.tif' are the same"):
        paths.check_outputs({"output": str(tmp_path / "o.tif"),
                             "confidence": str(tmp_path / "." / "o.tif")})
    paths.check_outputs({"output": str(tmp_path / "o.tif"), "confidence": None},
                        [("s2 input", str(src))])  # distinct: no error


def test_run_model_refuses_to_overwrite_an_input_or_a_vrt_source(tiny_models, scene, tmp_path):
    """The engine API: output = an input through a symlink, output = a source file of a VRT
    input, confidence = output. Every input is byte-identical afterwards and nothing new is
    written."""
    from osgeo import gdal

    inputs = scene(rows=40, cols=36)
    s2 = inputs["s2"][0]
    before = {p: digest(p) for ps in inputs.values() for p in ps}
    os.symlink(s2, tmp_path / "alias.tif")
    listing = set(os.listdir(tmp_path))
    with pytest.raises(OutputError, match="is the s2 input"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "alias.tif"))
    vrt = str(tmp_path / "s2_20150820.vrt")
    gdal.BuildVRT(vrt, [s2]).FlushCache()
    listing.add(os.path.basename(vrt))
    with pytest.raises(OutputError, match="a file it reads"):
        run_model(tiny_models["segmentation"], {"s2": [vrt] + inputs["s2"][1:],
                                                "dem": inputs["dem"]}, s2)
    out = str(tmp_path / "map.tif")
    with pytest.raises(OutputError, match="same file"):
        run_model(tiny_models["segmentation"], inputs, out,
                  RunOptions(confidence_path=str(tmp_path / "sub" / ".." / "map.tif")))
    with pytest.raises(OutputError, match="is the model file"):
        run_model(tiny_models["segmentation"], inputs, tiny_models["segmentation"])
    assert {p: digest(p) for p in before} == before
    assert set(os.listdir(tmp_path)) == listing


def test_folder_output_checks(tmp_path):
    src = tmp_path / "in.tif"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="is an existing file, not a folder"):
        paths.check_folder_output(str(src), "--output")
    with pytest.raises(OutputError, match="no output folder given"):
        paths.check_folder_output("  ", "--output")
    job = tmp_path / "job"
    (job / "blocks").mkdir(parents=True)
    inside = job / "blocks" / "r0.tif"
    inside.write_bytes(b"x")
    with pytest.raises(OutputError, match="is inside the output folder's 'blocks'"):
        paths.check_folder_output(str(job), "--output", [("s2 input", str(inside))],
                                  subfolders=["blocks"])
    with pytest.raises(OutputError, match="file 'mosaic.vrt'.* is the s2 input"):
        paths.check_folder_output(str(tmp_path), "--output",
                                  [("s2 input", str(tmp_path / "mosaic.vrt"))],
                                  names=["mosaic.vrt"])
