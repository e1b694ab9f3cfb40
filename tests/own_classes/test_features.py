"""engine/classes/features.py: block-wise sampling equals whole-raster sampling; the
bilinear interpolation is ONNX Resize's (linear, half_pixel) as onnxruntime computes it."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def emb_raster(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(5, 23, 31)).astype(np.float32)
    emb[:, 22, :] = np.nan                      # a nodata token row at the edge
    path = tmp_path / "emb.tif"
    with rasterio.open(path, "w", driver="GTiff", width=31, height=23, count=5, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(0, 0, 40, 40), nodata=np.nan) as d:
        d.write(emb)
    return str(path), emb


def test_blockwise_sampling_equals_whole_raster(emb_raster, monkeypatch):
    from engine.classes import features

    path, emb = emb_raster
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.integers(0, 92, 400), [0, 91, 87, 88]])
    cols = np.concatenate([rng.integers(0, 124, 400), [0, 123, 5, 64]])
    whole = features.sample_embeddings(emb, rows, cols, 4)
    monkeypatch.setattr(features, "BLOCK", 16)   # many blocks, edges between them
    blocks = features.sample_embeddings_file(path, rows, cols, 4)
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(blocks))
    np.testing.assert_allclose(blocks[~np.isnan(blocks)], whole[~np.isnan(whole)], rtol=1e-6)
    # rows 88-91 (last token row is nodata): their own token row 22 is NaN too
    assert np.isnan(whole[rows >= 88]).all() and np.isfinite(whole[rows < 84]).all()


def test_bilinear_is_onnx_resize_linear_half_pixel():
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from engine.classes.features import upsample_embeddings

    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 3, 6, 7)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                          coordinate_transformation_mode="half_pixel")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0][0]
    np.testing.assert_allclose(upsample_embeddings(x[0], 4), want, atol=1e-5)
