"""The engine's GPU path as far as a machine without a GPU can check it: CUDA provider
options, provider order with the CPU fallback, the float16 copy of a model (converted, run by
onnxruntime's CPU provider, compared with float32 on real tiles), memory estimate per batch.
bench/gpu.sh measures the rest on a machine with an NVIDIA GPU."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.session import (CUDA_MEMORY_LIMIT_ENV, FLOAT16_ENV, _date_only_nodes,
                            available_providers, create_session, cuda_provider_options,
                            estimate_device_bytes, float16_model, provider_list)


def _slovenia_feeds(meta, n=6):
    """Real tiles of the Slovenia patch (5 dates) for the tiny segmentation model."""
    import os

    from tests.conftest import SHARED

    s2 = np.load(os.path.join(SHARED, "data", "eolearn-slovenia-lulc",
                              "s2_l1c_reference_scenes.npy"))        # [5, H, W, 13]
    x = s2[..., [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]].transpose(0, 3, 1, 2) * 2.0
    t = meta.reference.tile_px
    tiles = [x[:, :, r:r + t, c:c + t] for r, c in [(0, 0), (16, 16), (32, 48), (60, 10),
                                                     (80, 80), (40, 70)][:n]]
    feeds = {"s2": np.stack(tiles).astype(np.float32),
             "s2_dates": np.repeat(np.array([[2015, d, 0] for d in (232, 212, 252, 242, 192)],
                                            np.int32)[None], n, 0),
             "ref_date": np.repeat(np.array([[2015, 192, 0]], np.int32), n, 0),
             "dem": np.full((n, 1, 1, t // 2, t // 2), 1.0, np.float32),
             "dem_dates": np.repeat(np.array([[[2015, 192, 0]]], np.int32), n, 0)}
    sess = ort.InferenceSession(_model_path[0], providers=["CPUExecutionProvider"])
    for arg in sess.get_inputs():
        if arg.name.endswith("_mask"):
            modality = arg.name[:-5]
            shape = [feeds[modality].shape[0], feeds[modality].shape[1]]
            if len(arg.shape) == 3:        # contract v2: one flag per token
                m = meta.modality(modality)
                shape.append((m.tile_px // m.patch_px) ** 2)
            feeds[arg.name] = np.zeros(shape, bool)
    return feeds


_model_path: list[str] = []


def test_cuda_provider_options_and_order(monkeypatch):
    opts = cuda_provider_options()
    assert opts["arena_extend_strategy"] == "kSameAsRequested" and "gpu_mem_limit" not in opts
    assert cuda_provider_options(2 ** 30)["gpu_mem_limit"] == str(2 ** 30)
    monkeypatch.setenv(CUDA_MEMORY_LIMIT_ENV, "512")
    assert cuda_provider_options()["gpu_mem_limit"] == str(512 * 2 ** 20)
    monkeypatch.setenv(CUDA_MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=CUDA_MEMORY_LIMIT_ENV):
        cuda_provider_options()
    monkeypatch.delenv(CUDA_MEMORY_LIMIT_ENV)
    assert provider_list("cpu") == ["CPUExecutionProvider"]
    auto = provider_list("auto")
    assert auto[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in available_providers():
        assert auto[0][0] == "CUDAExecutionProvider" and auto[0][1]["device_id"] == "0"
    else:
        assert auto == ["CPUExecutionProvider"]


def test_float16_copy_keeps_io_and_dates_float32_and_agrees(tiny_models, tmp_path):
    from engine.contract import read_model_metadata

    path = tiny_models["segmentation"]
    _model_path[:] = [path]
    meta = read_model_metadata(path)
    half = float16_model(path, str(tmp_path))
    assert float16_model(path, str(tmp_path)) == half                  # made once
    src, g16 = onnx.load(path).graph, onnx.load(half).graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in g16.input] == \
        [(i.name, i.type.tensor_type.elem_type) for i in src.input]
    assert {o.type.tensor_type.elem_type for o in g16.output} == {onnx.TensorProto.FLOAT}
    weights = [t for t in g16.initializer if t.data_type in (onnx.TensorProto.FLOAT,
                                                              onnx.TensorProto.FLOAT16)]
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in weights) >= 0.9 * len(weights)
    blocked = set(_date_only_nodes(src))
    assert blocked, "the date encoding must be found"
    kept = [n for n in g16.node if n.name in blocked]
    assert len(kept) == len(blocked)
    casts = [n for n in kept if n.op_type == "Cast"]
    assert casts and all(a.i == onnx.TensorProto.FLOAT for n in casts for a in n.attribute
                         if a.name == "to"), "the dates must be cast to float32, not float16"

    feeds = _slovenia_feeds(meta)
    f32 = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    f16 = ort.InferenceSession(half, providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    assert f16.dtype == np.float32 and np.isfinite(f16).all()
    assert (f16.argmax(1) == f32.argmax(1)).mean() >= 0.98
    # the dates still count in float16: another year changes the output as in float32
    later = dict(feeds, s2_dates=feeds["s2_dates"] + np.array([3, 0, 0], np.int32))
    f32b = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], later)[0]
    f16b = ort.InferenceSession(half, providers=["CPUExecutionProvider"]).run(["logits"], later)[0]
    d32, d16 = np.abs(f32b - f32).mean(), np.abs(f16b - f16).mean()
    assert d32 > 0 and abs(d16 - d32) < 0.2 * d32


def test_float16_is_cuda_only_cpu_session_runs_float32(tiny_models, monkeypatch):
    path = tiny_models["segmentation"]
    _model_path[:] = [path]
    from engine.contract import read_model_metadata

    feeds = _slovenia_feeds(read_model_metadata(path))
    monkeypatch.setenv(FLOAT16_ENV, "1")
    sess, used = create_session(path, "cpu", threads=1)
    assert used == "CPUExecutionProvider"
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    assert np.array_equal(sess.run(["logits"], feeds)[0], ref)       # float32 on the CPU
    auto, used = create_session(path, "auto", threads=1, float16=True)
    if "CUDAExecutionProvider" not in available_providers():
        assert used == "CPUExecutionProvider"                          # CPU fallback
        assert np.array_equal(auto.run(["logits"], feeds)[0], ref)


def test_device_memory_estimate_grows_with_the_batch(tiny_models):
    from engine.contract import read_model_metadata

    meta = read_model_metadata(tiny_models["segmentation"])
    one = estimate_device_bytes(meta, 10 ** 6, 1, dim=16)
    eight = estimate_device_bytes(meta, 10 ** 6, 8, dim=16)
    half = estimate_device_bytes(meta, 10 ** 6, 8, float16=True, dim=16)
    assert eight["total"] - one["total"] == 7 * one["per_tile"] > 0
    assert half["per_tile"] * 2 == eight["per_tile"] and half["weights"] == 5 * 10 ** 5
