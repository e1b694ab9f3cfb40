"""Measured matmul rates of this machine: the denominator of the benchmarks' "share of the
physical limit" figures (docs/performance.md). Best of numpy, torch and onnxruntime at 4096^3
and of onnxruntime ``MatMul`` / ``MatMulInteger`` with a constant B (as the model's weights
are) at the shapes of :data:`PEAK_SHAPES`."""
from __future__ import annotations

import contextlib
import time

import numpy as np


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ort_matmul_rate(threads: int, m: int, k: int, n: int, repeats: int = 5) -> float:
    """onnxruntime float32 MatMul rate (FLOP/s) for [m, k] x [k, n]."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [m, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"A": rng.standard_normal((m, k), dtype=np.float32),
             "B": rng.standard_normal((k, n), dtype=np.float32)}
    sess.run(["C"], feeds)
    return 2.0 * m * k * n / min(_timed(lambda: sess.run(["C"], feeds)) for _ in range(repeats))


def matmul_peak(threads: int, n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """Best float32 n x n matmul rate (FLOP/s) of numpy, torch and onnxruntime."""
    import torch

    flops = 2.0 * n ** 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)

    def best(fn):
        fn()
        return flops / min(_timed(fn) for _ in range(repeats))

    try:  # numpy's BLAS uses every core unless told (threadpoolctl comes with scikit-learn)
        from threadpoolctl import threadpool_limits
        numpy_threads = threadpool_limits(limits=threads)
    except ImportError:
        numpy_threads = contextlib.nullcontext()
    with numpy_threads:
        rates = {"numpy": best(lambda: a @ b)}
    torch.set_num_threads(threads)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        rates["torch"] = best(lambda: torch.mm(ta, tb))
    rates["onnxruntime"] = ort_matmul_rate(threads, n, n, n, repeats)
    return rates



#: (m, k, n) of the peak measurements: cubes, and a MAESTRO-base MLP layer on 8 tiles of
#: 5 dates x 64 tokens (2560 x 768 x 3072).
PEAK_SHAPES = [(768, 768, 768), (2048, 2048, 2048), (4096, 4096, 4096), (2560, 768, 3072)]


def ort_rates(threads: int, repeats: int = 3) -> dict[str, dict[str, float]]:
    """onnxruntime CPU rates (FLOP/s, an int8 multiply-add counting 2 operations) of float32
    ``MatMul`` and uint8 x int8 ``MatMulInteger`` (-> int32, onnxruntime's VNNI kernel), B
    constant as the model's weights are, per shape of :data:`PEAK_SHAPES`."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {"float32": {}, "int8": {}}
    for m, k, n in PEAK_SHAPES:
        for prec, op, ta, tc in (("float32", "MatMul", TensorProto.FLOAT, TensorProto.FLOAT),
                                 ("int8", "MatMulInteger", TensorProto.UINT8, TensorProto.INT32)):
            if prec == "float32":
                a = rng.standard_normal((m, k)).astype(np.float32)
                b = rng.standard_normal((k, n)).astype(np.float32)
            else:
                a = rng.integers(0, 255, (m, k), dtype=np.uint8)
                b = rng.integers(-127, 127, (k, n), dtype=np.int8)
            graph = helper.make_graph(
                [helper.make_node(op, ["A", "B"], ["C"])], "mm",
                [helper.make_tensor_value_info("A", ta, [m, k])],
                [helper.make_tensor_value_info("C", tc, [m, n])],
                initializer=[numpy_helper.from_array(b, "B")])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            sess = ort.InferenceSession(model.SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"])
            sess.run(["C"], {"A": a})
            best = min(_timed(lambda: sess.run(["C"], {"A": a})) for _ in range(repeats))
            out[prec][f"onnxruntime {m}x{k}x{n}"] = 2.0 * m * k * n / best
    return out


def best_float32_rate(threads: int, repeats: int = 3) -> tuple[float, dict[str, float]]:
    """(best float32 matmul FLOP/s, every rate measured by name) on ``threads`` threads."""
    rates = dict(ort_rates(threads, repeats)["float32"])
    rates.update({f"{k} 4096^3": v for k, v in matmul_peak(threads, repeats=repeats).items()})
    return max(rates.values()), rates
