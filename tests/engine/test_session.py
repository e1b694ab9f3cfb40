"""onnxruntime sessions: providers (CUDA first when present, CPU always last), threads and
graph optimisation set explicitly, the provider used reported."""
from __future__ import annotations

import onnxruntime as ort
import pytest

from engine.errors import RuntimeDependencyError
from engine.session import available_providers, choose_providers, create_session


def test_provider_order():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    auto = choose_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in available_providers()) == (auto[0] == "CUDAExecutionProvider")
    with pytest.raises(ValueError, match="device must be one of"):
        choose_providers("tpu")
    if "CUDAExecutionProvider" not in available_providers():
        with pytest.raises(RuntimeDependencyError, match="onnxruntime-gpu"):
            choose_providers("cuda")


def test_session_options_are_explicit(tiny_models):
    sess, used = create_session(tiny_models["segmentation"], "cpu", threads=1)
    assert used == "CPUExecutionProvider" == sess.get_providers()[0]
    opts = sess.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
