"""onnxruntime sessions: loading, execution providers, threads, the GPU path.

The CUDA execution provider is tried first when ``device`` is ``auto`` or ``cuda`` and
onnxruntime-gpu reports it; the CPU provider is always the fallback. The provider that
onnxruntime actually uses is reported back (``session.get_providers()[0]``).

GPU path (issue 14; measured by bench/gpu.sh on a machine with an NVIDIA GPU):
- CUDA provider options (:func:`cuda_provider_options`): the memory arena grows by what is
  requested (``kSameAsRequested``, not onnxruntime's default power-of-two growth), so device
  memory follows the batch size (:func:`estimate_device_bytes` gives the expected figure);
  ``MAESTRO_CUDA_MEMORY_LIMIT_MB`` caps it; cuDNN convolution search is heuristic (the
  patch embedding is the only convolution, and an exhaustive search would run per new shape).
- float16 (:func:`float16_model`): a converted copy of the model whose graph inputs and
  outputs stay float32 (the engine's feeds and outputs do not change) and whose date-encoding
  nodes (computed from the date inputs alone) stay float32 as in training (float16 has a
  spacing of 2 above 2048 and 0.25 near 366: dates must not go through it). Used only on
  CUDA, asked for with ``create_session(..., float16=True)`` or ``MAESTRO_FLOAT16=1``; on the
  CPU provider the float32 model is used.
"""
from __future__ import annotations

import os
from typing import Any

from .errors import ModelFileError, RuntimeDependencyError

DEVICES = ("auto", "cpu", "cuda")
#: Environment variables of the GPU path (see the module docstring).
FLOAT16_ENV = "MAESTRO_FLOAT16"
CUDA_MEMORY_LIMIT_ENV = "MAESTRO_CUDA_MEMORY_LIMIT_MB"


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


def cuda_provider_options(memory_limit_bytes: int | None = None, device_id: int = 0) -> dict[str, str]:
    """Options of onnxruntime's CUDAExecutionProvider for the engine.

    Args:
        memory_limit_bytes: cap of the provider's memory arena (None: the
            ``MAESTRO_CUDA_MEMORY_LIMIT_MB`` environment variable, else no cap).
        device_id: CUDA device.

    Source of the option names: onnxruntime's CUDA execution provider documentation
    (https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html).
    """
    opts = {"device_id": str(int(device_id)), "arena_extend_strategy": "kSameAsRequested",
            "cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": "1"}
    if memory_limit_bytes is None and os.environ.get(CUDA_MEMORY_LIMIT_ENV):
        try:
            memory_limit_bytes = int(float(os.environ[CUDA_MEMORY_LIMIT_ENV]) * 2 ** 20)
        except ValueError as exc:
            raise ValueError(f"{CUDA_MEMORY_LIMIT_ENV} must be a number of MiB "
                             f"(got '{os.environ[CUDA_MEMORY_LIMIT_ENV]}')") from exc
    if memory_limit_bytes:
        opts["gpu_mem_limit"] = str(int(memory_limit_bytes))
    return opts


def provider_list(device: str, memory_limit_bytes: int | None = None) -> list:
    """:func:`choose_providers` with the CUDA provider's options attached (what
    ``InferenceSession(providers=...)`` takes)."""
    return [("CUDAExecutionProvider", cuda_provider_options(memory_limit_bytes))
            if name == "CUDAExecutionProvider" else name for name in choose_providers(device)]


def _date_only_nodes(graph) -> list[str]:
    """Names of the nodes computed from the date inputs alone (``*_dates``, ``ref_date``):
    the date encoding, which must stay float32."""
    date_inputs = {i.name for i in graph.input
                   if i.name.endswith("_dates") or i.name == "ref_date"}
    other_inputs = {i.name for i in graph.input} - date_inputs
    from_dates, from_other = set(date_inputs), set(other_inputs)
    names = []
    for node in graph.node:                          # ONNX graphs are topologically sorted
        ins = [n for n in node.input if n]
        dated = any(n in from_dates for n in ins)
        other = any(n in from_other for n in ins)
        if dated:
            from_dates.update(node.output)
        if other:
            from_other.update(node.output)
        if dated and not other:
            names.append(node.name)
    return names


def float16_model(path: str, cache_dir: str | None = None) -> str:
    """Path of a float16 copy of ``path`` (made once per file version, kept in ``cache_dir``,
    default a folder in the system temp dir).

    Made with onnxruntime's ``onnxruntime.transformers.float16.convert_float_to_float16``
    (graph I/O kept float32, date-encoding nodes blocked in float32, constants clamped to the
    float16 range: the attention mask's -1e9 becomes -65504, still exp() = 0).

    Raises:
        ModelFileError: the file cannot be read or converted.
    """
    import hashlib
    import tempfile

    _check_file(path)
    stat = os.stat(path)
    key = hashlib.sha256(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "maestro-float16")
    os.makedirs(cache_dir, exist_ok=True)
    out = os.path.join(cache_dir, f"{key.hexdigest()[:16]}-{os.path.basename(path)}")
    if os.path.exists(out):
        return out
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(path)
        blocked = _date_only_nodes(model.graph)
        half = convert_float_to_float16(model, keep_io_types=True, node_block_list=blocked)
        tmp = f"{out}.{os.getpid()}.part"
        onnx.save(half, tmp)
        os.replace(tmp, out)
    except Exception as exc:  # onnx / onnxruntime raise their own types
        raise ModelFileError(f"'{path}' could not be converted to float16: {exc}") from exc
    return out


def estimate_device_bytes(meta, weight_bytes: int, batch_size: int, float16: bool = False,
                          dim: int | None = None) -> dict[str, int]:
    """Expected device memory of one batch: weights + activations that grow with the batch.

    Per tile, for every encoder token (sum over modalities of max_dates x (tile/patch)^2 =
    L): about 16 tensors of L x dim (q, k, v, attention output, MLP hidden of 4 dim, norms,
    residuals; onnxruntime reuses buffers across blocks) plus one score matrix of
    heads x L x L (heads = dim / 64, the official presets' head width), in 4 bytes (2 in
    float16). An estimate to size ``batch_size`` and ``MAESTRO_CUDA_MEMORY_LIMIT_MB``, checked
    against the measured peak by bench/gpu.sh.

    Args:
        meta: ModelMetadata. weight_bytes: size of the weights (float32 file size).
        dim: encoder width (None: ``meta.embedding_dim`` or 768, MAESTRO-base).
    """
    dim = int(dim or getattr(meta, "embedding_dim", None) or 768)
    tokens = sum(m.max_dates * (m.tile_px // m.patch_px) ** 2 for m in meta.modalities)
    heads = max(1, dim // 64)
    width = 2 if float16 else 4
    per_tile = (16 * tokens * dim + heads * tokens * tokens) * width
    weights = weight_bytes // 2 if float16 else weight_bytes
    return {"weights": int(weights), "per_tile": int(per_tile),
            "total": int(weights + batch_size * per_tile)}


def wants_float16(float16: bool | None) -> bool:
    """``float16`` as given, else the ``MAESTRO_FLOAT16`` environment variable."""
    if float16 is not None:
        return bool(float16)
    return os.environ.get(FLOAT16_ENV, "").strip().lower() in ("1", "true", "yes")


_CACHE: dict[tuple, tuple[Any, str]] = {}
_CACHE_SIZE = 2


def cached_session(path: str, device: str = "auto", threads: int | None = None,
                   float16: bool | None = None):
    """:func:`create_session` remembered for the last few (file, size, mtime, device, threads,
    float16), so that many runs of one model (batch runner, sub-areas) load it once.
    onnxruntime sessions may be run from several threads at once (the runner's batches in
    flight share one session)."""
    _check_file(path)
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, device, threads,
           wants_float16(float16), os.environ.get(CUDA_MEMORY_LIMIT_ENV, ""))
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = create_session(path, device, threads, float16=float16)
    return _CACHE[key]


def create_session(path: str, device: str = "auto", threads: int | None = None,
                   float16: bool | None = None, memory_limit_bytes: int | None = None):
    """Create an InferenceSession with explicit threads and full graph optimisation.

    Args:
        path: ONNX file.
        device: auto | cpu | cuda.
        threads: intra-op threads; None = number of CPU cores onnxruntime sees.
        float16: run a float16 copy of the model (:func:`float16_model`) when the CUDA
            provider is used; None = the ``MAESTRO_FLOAT16`` environment variable. Ignored
            on the CPU provider (float32 is used).
        memory_limit_bytes: cap of the CUDA memory arena (see :func:`cuda_provider_options`).

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
    providers = provider_list(device, memory_limit_bytes)
    on_cuda = providers[0] != "CPUExecutionProvider"
    model = float16_model(path) if on_cuda and wants_float16(float16) else path
    try:
        sess = ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelFileError(f"'{path}' is not a valid ONNX model: {exc}") from exc
    used = sess.get_providers()[0]
    if device == "cuda" and used != "CUDAExecutionProvider":
        raise RuntimeDependencyError(
            f"device=cuda was asked for but onnxruntime fell back to {used} "
            "(CUDA or cuDNN libraries missing or mismatched)")
    if model != path and used != "CUDAExecutionProvider":      # CUDA failed to load: float32
        sess = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        used = sess.get_providers()[0]
    return sess, used
