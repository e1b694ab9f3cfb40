"""Reading onto model grids (direct and warped), nodata masks, scaling."""
from __future__ import annotations

import numpy as np
import rasterio

from engine.align import SliceReader, model_grid
from engine.contract import Scaling
from engine.scaling import scale_slice
from engine.stack import open_slice
from tests.engine.conftest import CRS, downsample2, grid, write_reprojected
from tests.tiny_model import tiny_metadata


def test_scaling_and_nodata_fill():
    spec = tiny_metadata().modality("dem")
    data = np.array([[[800.0, np.nan], [500.0, 200.0]]], np.float32)
    scaled, valid = scale_slice(data, spec)
    np.testing.assert_array_equal(valid, [[True, False], [True, True]])
    np.testing.assert_allclose(scaled[0], [[1.0, 0.0], [0.0, -1.0]])   # (x-500)/300, fill 0


def test_log_scaling():
    from dataclasses import replace

    spec = replace(tiny_metadata().modality("dem"), scaling=Scaling("log", (0.0,), (2.0,)),
                   nodata_fill=-7.0)
    data = np.array([[[np.e ** 2, 0.0, np.nan]]], np.float32)
    scaled, valid = scale_slice(data, spec)
    np.testing.assert_allclose(scaled[0, 0], [1.0, np.log(1e-10) / 2, -7.0], rtol=1e-5)


def test_direct_read_honours_mask_band_and_pads(tmp_path, slovenia):
    spec = tiny_metadata().modality("s2")
    path = str(tmp_path / "s2_20150711.tif")
    data = slovenia["s2"][4][:, :20, :24]
    with rasterio.open(path, "w", driver="GTiff", width=24, height=20, count=10, dtype="uint16",
                       crs=CRS, transform=grid()) as dst:
        dst.write(data)
        mask = np.full((20, 24), 255, np.uint8)
        mask[5:8, 6:9] = 0
        dst.write_mask(mask)
    sl = open_slice(path, spec)
    g = model_grid(sl.crs, sl.transform, 32, 32, 16, 16)
    reader = SliceReader(sl, g)
    assert reader.direct
    out = reader.read(0, 16, 16)                       # columns 16..31: 8 real, 8 padding
    reader.close()
    assert out.shape == (10, 16, 16) and out.dtype == np.float32
    assert np.isnan(out[:, :, 8:]).all()
    np.testing.assert_array_equal(out[:, :, :8], data[:, :16, 16:24])
    full = SliceReader(sl, g)
    tile = full.read(0, 0, 16)
    full.close()
    assert np.isnan(tile[:, 5:8, 6:9]).all() and not np.isnan(tile[:, :5]).any()


def test_warped_read_matches_the_grid(tmp_path, slovenia):
    """A DEM written in EPSG:3794 at 10 m, read on the 20 m model grid in EPSG:32633, is
    close to the 2x2 block means of the original DEM (a shift of one pixel would not be)."""
    spec = tiny_metadata().modality("dem")
    dem = slovenia["dem"][:64, :64]
    path = write_reprojected(str(tmp_path / "dem3794.tif"), dem, grid(10.0), "EPSG:3794", 10.0)
    sl = open_slice(path, spec)
    g = model_grid(rasterio.crs.CRS.from_string(CRS), grid(10.0), 64, 64, 16, 8)
    reader = SliceReader(sl, g)
    assert not reader.direct and g.width == 32
    got = reader.read(0, 0, 32)[0]
    reader.close()
    expect = downsample2(dem)
    inner = (slice(2, 30), slice(2, 30))
    err = np.abs(got[inner] - expect[inner]).mean()
    shifted = np.abs(expect[3:31, 2:30] - expect[inner]).mean()
    assert err < 0.5 * shifted and err < 2.0, (err, shifted)


def test_single_label_classification(tmp_path, scene):
    """A single-label classification model writes uint8 class ids per tile with colours."""
    import json

    from engine.api import RunOptions, run_model
    from engine.contract import parse_metadata
    from training.export import export_onnx
    from tests.tiny_model import _TinyNet

    doc = tiny_metadata("classification").to_dict()
    doc["multilabel"] = False
    meta = parse_metadata(json.loads(json.dumps(doc)))
    import torch

    torch.manual_seed(1)
    path = str(tmp_path / "single.onnx")
    export_onnx(_TinyNet(meta).eval(), meta, path)
    inputs = scene(rows=40, cols=48)
    out, conf = str(tmp_path / "cls.tif"), str(tmp_path / "conf.tif")
    run_model(path, inputs, out, RunOptions(confidence_path=conf))
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "uint8" and src.shape == (3, 3)
        assert set(np.unique(src.read(1))) <= {0, 1, 2}
        assert src.colormap(1)[2][:3] == (0xd7, 0x30, 0x27)
    with rasterio.open(conf) as src:
        c = src.read(1)
        assert ((c >= 1 / 3 - 1e-6) & (c <= 1)).all()
