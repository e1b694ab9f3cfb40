"""Bad input: each gets a clear error type and message, and leaves no output behind."""
from __future__ import annotations

import os

import onnx
import pytest

from engine.api import RunOptions, SliceInput, run_model
from engine.errors import (CancelledError, ContractError, InputError, ModelFileError, OutputError,
                           RuntimeDependencyError)
from tests.engine.conftest import grid, write_tif


def leftovers(folder, inputs):
    """Files in ``folder`` that are not inputs (outputs or temporary parts)."""
    keep = {os.path.basename(p) for paths in inputs.values() for p in paths}
    return sorted(f for f in os.listdir(folder) if f not in keep)


def test_band_count_differs(tiny_models, scene, slovenia, tmp_path):
    inputs = scene(rows=20, cols=20)
    bad = write_tif(tmp_path / "s2_20150711_rgb.tif", slovenia["s2"][4][:3, :20, :20], grid())
    with pytest.raises(InputError, match=r"s2_20150711_rgb.tif' has 3 bands .* 's2' expects 10"):
        run_model(tiny_models["segmentation"], {"s2": [bad], "dem": inputs["dem"]},
                  str(tmp_path / "o.tif"))


def test_missing_modality(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    with pytest.raises(InputError, match=r"needs modality\(ies\) \['dem'\]"):
        run_model(tiny_models["segmentation"], {"s2": inputs["s2"]}, str(tmp_path / "o.tif"))


def test_unknown_modality(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    with pytest.raises(InputError, match=r"\['aerial'\] are not modalities"):
        run_model(tiny_models["segmentation"], {**inputs, "aerial": inputs["dem"]},
                  str(tmp_path / "o.tif"))


def test_corrupt_onnx(tiny_models, scene, tmp_path):
    bad = tmp_path / "bad.onnx"
    data = open(tiny_models["segmentation"], "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="bad.onnx' is not a valid ONNX model"):
        run_model(str(bad), scene(rows=20, cols=20), str(tmp_path / "o.tif"))


def test_onnx_without_metadata(tiny_models, scene, tmp_path):
    proto = onnx.load(tiny_models["segmentation"])
    del proto.metadata_props[:]
    plain = str(tmp_path / "plain.onnx")
    onnx.save(proto, plain)
    with pytest.raises(ContractError, match="has no 'maestro' entry"):
        run_model(plain, scene(rows=20, cols=20), str(tmp_path / "o.tif"))


def test_rasters_do_not_overlap(tiny_models, scene, slovenia, tmp_path):
    inputs = scene(rows=20, cols=20)
    far = write_tif(tmp_path / "dem_far.tif", slovenia["dem"][:10, :10], grid(20.0, x0=600000.0),
                    nodata=-9999.0)
    with pytest.raises(InputError, match="dem_far.tif' \\(dem\\) does not overlap"):
        run_model(tiny_models["segmentation"], {"s2": inputs["s2"], "dem": [far]},
                  str(tmp_path / "o.tif"))


def test_raster_without_crs(tiny_models, scene, slovenia, tmp_path):
    inputs = scene(rows=20, cols=20)
    nocrs = write_tif(tmp_path / "dem_nocrs.tif", slovenia["dem"][:10, :10], grid(20.0), crs=None)
    with pytest.raises(InputError, match="dem_nocrs.tif' \\(dem\\) has no CRS"):
        run_model(tiny_models["segmentation"], {"s2": inputs["s2"], "dem": [nocrs]},
                  str(tmp_path / "o.tif"))


def test_all_nodata_input(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20, dem_edit=lambda dem: dem.fill(-9999.0))
    with pytest.raises(InputError, match="modality 'dem' has no valid pixel"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"))
    assert leftovers(tmp_path, inputs) == []


def test_stack_without_dates(tiny_models, scene, slovenia, tmp_path):
    inputs = scene(rows=20, cols=20)
    undated = [write_tif(tmp_path / f"s2_scene_{k}.tif", slovenia["s2"][k][:, :20, :20], grid(),
                         nodata=0) for k in range(2)]
    with pytest.raises(InputError, match="no acquisition date found for .*s2_scene_0.tif"):
        run_model(tiny_models["segmentation"], {"s2": undated, "dem": inputs["dem"]},
                  str(tmp_path / "o.tif"))
    # explicit dates make the same files usable
    import datetime as dt

    dated = [SliceInput(p, dt.date(2020, 5, 1 + k)) for k, p in enumerate(undated)]
    report = run_model(tiny_models["segmentation"], {"s2": dated, "dem": inputs["dem"]},
                       str(tmp_path / "o.tif"))
    assert report.dates["s2"] == ["2020-05-01", "2020-05-02"]


def test_cancel_mid_run_leaves_nothing(tiny_models, scene, tmp_path):
    inputs = scene(rows=101, cols=100)
    calls = []

    def is_cancelled():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(CancelledError, match="cancelled"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                  RunOptions(batch_size=2, confidence_path=str(tmp_path / "c.tif")),
                  is_cancelled=is_cancelled)
    assert len(calls) == 4
    assert leftovers(tmp_path, inputs) == []


def test_unwritable_output(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    with pytest.raises(OutputError, match="folder .*no_such_dir' does not exist"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "no_such_dir" / "o.tif"))
    with pytest.raises(OutputError, match="is a folder"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path))
    assert leftovers(tmp_path, inputs) == []


def test_wrong_task_and_options(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    with pytest.raises(InputError, match="is a embedding model; this tool needs a segmentation"):
        run_model(tiny_models["embedding"], inputs, str(tmp_path / "o.tif"),
                  RunOptions(expect_task="segmentation"))
    with pytest.raises(InputError, match="overlap must be between 0 and 75"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                  RunOptions(tile_overlap_pct=90))
    with pytest.raises(InputError, match="bounds .* do not overlap"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                  RunOptions(bounds=(0, 0, 10, 10)))
    assert leftovers(tmp_path, inputs) == []


def test_cuda_asked_without_cuda(tiny_models, scene, tmp_path):
    from engine.session import available_providers

    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this machine has CUDA: the fallback error cannot happen")
    inputs = scene(rows=20, cols=20)
    with pytest.raises(RuntimeDependencyError, match="device=cuda"):
        run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                  RunOptions(device="cuda"))
    assert leftovers(tmp_path, inputs) == []
