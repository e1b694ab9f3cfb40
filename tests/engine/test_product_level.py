"""Sentinel-2 processing level (a new-user trial): Level-2A rasters fed to the bundled model,
trained on Level-1C, gave a map with 10 % of pixels changed and no word. The level the
raster's metadata or name states is compared with the model's ``radiometry.product``.
Real bundled sample rewritten by rasterio."""
from __future__ import annotations

import glob
import os

import pytest
import rasterio

from engine.api import RunOptions, run_model
from tests.conftest import ROOT

SAMPLE = os.path.join(ROOT, "resources", "sample")
MODEL = glob.glob(os.path.join(ROOT, "resources", "models", "*.onnx"))[0]


def _copy(folder, rename=None, tags=None):
    out = []
    for path in sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))):
        name = os.path.basename(path) if rename is None else rename(os.path.basename(path))
        with rasterio.open(path) as src:
            profile, data, all_tags = src.profile, src.read(), src.tags()
            names = src.descriptions
        all_tags.update(tags or {})
        dst_path = os.path.join(folder, name)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(**all_tags)
            for b, n in enumerate(names, 1):
                dst.set_band_description(b, n)
        out.append(dst_path)
    return {"s2": out, "dem": [os.path.join(SAMPLE, "dem.tif")]}


@pytest.mark.parametrize("case", ["tag", "product_type", "name"])
def test_level_2a_rasters_for_a_level_1c_model_are_warned(tmp_path, case):
    if case == "tag":
        inputs = _copy(str(tmp_path), tags={"PROCESSING_LEVEL": "Level-2A"})
    elif case == "product_type":
        inputs = _copy(str(tmp_path), tags={"PRODUCT_TYPE": "S2MSI2A"})
    else:
        inputs = _copy(str(tmp_path), rename=lambda n: n.replace("L1C", "L2A"))
    report = run_model(MODEL, inputs, str(tmp_path / "o.tif"), RunOptions())
    lines = [m for m in report.messages if "is Sentinel-2 L2A" in m]
    assert len(lines) == 1 and lines[0].startswith("warning: s2: the raster is Sentinel-2 L2A")
    assert "trained on Sentinel-2 L1C" in lines[0] and lines[0].count("S2_L") == 5   # all files


def test_level_1c_rasters_are_not_warned(tmp_path):
    inputs = _copy(str(tmp_path), tags={"PROCESSING_LEVEL": "Level-1C"})
    report = run_model(MODEL, inputs, str(tmp_path / "o.tif"), RunOptions())
    assert not any("is Sentinel-2" in m for m in report.messages)


def test_zero_is_data_where_the_raster_declares_its_own_nodata(tmp_path):
    """A new-user trial: int16 reflectance with the offset removed, nodata declared -32768,
    a dark water block with B11/B12 = 0: those pixels became holes. A declared nodata is the
    file's word: a 0 there is data; undeclared, 0 stays Sentinel-2's NO_DATA."""
    import numpy as np

    maps = {}
    for key, nodata in (("declared", -32768), ("undeclared", None)):
        folder = tmp_path / key
        folder.mkdir()
        paths = []
        for path in sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))):
            with rasterio.open(path) as src:
                profile, data, tags, names = src.profile, src.read(), src.tags(), src.descriptions
            data = data.astype(np.int16)
            data[8:, 40:60, 40:60] = 0                      # B11, B12 of a dark block
            profile.update(dtype="int16", nodata=nodata)
            dst_path = str(folder / os.path.basename(path))
            with rasterio.open(dst_path, "w", **profile) as dst:
                dst.write(data)
                dst.update_tags(**tags)
                dst.descriptions = names
            paths.append(dst_path)
        report = run_model(MODEL, {"s2": paths, "dem": [os.path.join(SAMPLE, "dem.tif")]},
                           str(tmp_path / f"{key}.tif"), RunOptions())
        with rasterio.open(report.output_path) as src:
            maps[key] = (src.read(1), src.nodata)
    block = (slice(40, 60), slice(40, 60))
    assert (maps["declared"][0][block] != maps["declared"][1]).all()      # mapped
    assert (maps["undeclared"][0][block] == maps["undeclared"][1]).all()  # NO_DATA


def test_a_wrong_declared_scale_is_named_in_the_refusal(tmp_path):
    """A new-user trial: reflectance 0-1 floats with a GDAL scale 0.0001 declared were refused
    with advice to convert the values; the declared scale is what is wrong."""
    import numpy as np

    from engine.errors import InputError

    paths = []
    for path in sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif"))):
        with rasterio.open(path) as src:
            profile, data, tags, names = src.profile, src.read(), src.tags(), src.descriptions
        profile.update(dtype="float32", nodata=None)
        dst_path = str(tmp_path / os.path.basename(path))
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write((data / 10000.0).astype(np.float32))
            dst.update_tags(**tags)
            dst.descriptions = names
            dst.scales = (0.0001,) * len(names)
        paths.append(dst_path)
    with pytest.raises(InputError, match=r"declares a GDAL scale 0.0001 .* remove it"):
        run_model(MODEL, {"s2": paths, "dem": [os.path.join(SAMPLE, "dem.tif")]},
                  str(tmp_path / "o.tif"), RunOptions())
    assert not (tmp_path / "o.tif").exists()
