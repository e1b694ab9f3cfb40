"""onnxruntime sessions: loading, execution providers, threads.

The CUDA execution provider is tried first when ``device`` is ``auto`` or ``cuda`` and
onnxruntime-gpu reports it; the CPU provider is always the fallback. The provider that
onnxruntime actually uses is reported back (``session.get_providers()[0]``).
"""
from __future__ import annotations

import os
from typing import Any

from .errors import ModelFileError, RuntimeDependencyError

DEVICES = ("auto", "cpu", "cuda")


def import_onnxruntime():
    """Import onnxruntime or raise a RuntimeDependencyError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:  # the plugin shows this message as it is
        raise RuntimeDependencyError(
            "onnxruntime is not installed in this Python (in QGIS: Raster > MAESTRO land "
            "cover > Install dependencies…; elsewhere: pip install onnxruntime, or "
            "onnxruntime-gpu for an NVIDIA GPU, inside a virtual environment)") from exc
    return onnxruntime


def _check_file(path: str) -> None:
    if not path or not os.path.isfile(path):
        raise ModelFileError(f"model file not found: '{path}'")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"model file is not readable: '{path}'")


def inspect_model(path: str) -> tuple[dict[str, str], list[Any], list[Any]]:
    """Return (custom metadata map, graph inputs, graph outputs) of an ONNX file.

    Raises:
        ModelFileError: missing, unreadable or not loadable by onnxruntime.
    """
    _check_file(path)
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    # Only the I/O is needed here: skip graph optimisation to open big files fast.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        sess = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFileError(f"'{path}' is not a valid ONNX model: {exc}") from exc
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    return meta, list(sess.get_inputs()), list(sess.get_outputs())


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers (empty if not installed)."""
    try:
        ort = import_onnxruntime()
    except RuntimeDependencyError:
        return []
    return list(ort.get_available_providers())


def choose_providers(device: str) -> list[str]:
    """Providers to request for ``device`` (auto|cpu|cuda), CUDA first when usable.

    Raises:
        RuntimeDependencyError: ``device='cuda'`` but onnxruntime has no CUDA provider.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got '{device}'")
    available = available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise RuntimeDependencyError(
            "device=cuda was asked for but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {available}); install onnxruntime-gpu with a matching CUDA, or use device=auto")
    return (["CUDAExecutionProvider"] if has_cuda else []) + ["CPUExecutionProvider"]


_CACHE: dict[tuple, tuple[Any, str]] = {}
_CACHE_SIZE = 2


def cached_session(path: str, device: str = "auto", threads: int | None = None):
    """:func:`create_session` remembered for the last few (file, size, mtime, device, threads),
    so that many runs of one model (batch runner, sub-areas) load it once. onnxruntime
    sessions may be run from several threads."""
    _check_file(path)
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, device, threads)
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = create_session(path, device, threads)
    return _CACHE[key]


def create_session(path: str, device: str = "auto", threads: int | None = None):
    """Create an InferenceSession with explicit threads and full graph optimisation.

    Args:
        path: ONNX file.
        device: auto | cpu | cuda.
        threads: intra-op threads; None = number of CPU cores onnxruntime sees.

    Returns:
        (session, provider actually used).
    """
    _check_file(path)
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads) if threads else (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # Idle intra-op threads block instead of spinning: the model runs ~700 small operators
    # per batch with a barrier after each, and spinning threads steal the cores from the
    # engine's reader thread and from other processes (a shared machine, the Dask workers
    # of the batch runner); measured in docs/performance.md.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers = choose_providers(device)
    try:
        sess = ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelFileError(f"'{path}' is not a valid ONNX model: {exc}") from exc
    used = sess.get_providers()[0]
    if device == "cuda" and used != "CUDAExecutionProvider":
        raise RuntimeDependencyError(
            f"device=cuda was asked for but onnxruntime fell back to {used} "
            "(CUDA or cuDNN libraries missing or mismatched)")
    return sess, used
