"""The FLOP count behind figure 4 of bench/engine_bench.py: two independent counts agree.

torch's FlopCounterMode (under the math attention backend) and the MatMul/Gemm shapes that
onnxruntime's profile reports for the exported model must give the same FLOPs, up to the
patch-embedding convolutions that only the first counts. A count that drops the attention
matmuls (what FlopCounterMode did with CPU's fused SDPA kernel) is ~20 % short and fails.
"""
from __future__ import annotations

import pytest

from bench.engine_bench import BATCH, build_model, model_flops, onnx_matmul_flops, slovenia_batches


def test_torch_and_onnxruntime_flop_counts_agree(tmp_path):
    import torch

    torch.set_num_threads(1)
    model, path, _ = build_model(str(tmp_path / "bench.onnx"))
    feeds = slovenia_batches(1)[0]
    counted = model_flops(model, feeds)
    profiled = onnx_matmul_flops(path, feeds)
    assert counted == pytest.approx(profiled, rel=0.01)
    # the attention matmuls are in: 12 blocks x 2 x (2 * B * heads * N^2 * head_dim)
    tokens, heads, head_dim, depth = 192, 3, 64, 12
    attention = depth * 2 * 2 * BATCH * heads * tokens ** 2 * head_dim
    assert counted > attention * 4        # linear layers are ~4x the attention here
    assert profiled - attention > 0.7 * profiled
