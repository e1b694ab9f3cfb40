"""int8 variants of a MAESTRO model, made with onnxruntime's quantisation tools and checked
against the float32 model before anything is written.

>>> report = quantize_model("model.onnx", {"s2": ["s2_a.tif", "s2_b.tif"], "dem": ["dem.tif"]},
...                         "model.int8.onnx")

How (onnxruntime.quantization, https://onnxruntime.ai/docs/performance/model-optimizations/
quantization.html):

- tiles: the engine itself prepares them (:func:`capture_feeds` runs :func:`engine.api.run_model`
  over small windows spread across the user's rasters and records the inputs it gives
  onnxruntime), so calibration sees exactly the scaling, dates and masks of a real run, on the
  user's own imagery. Windows alternate between calibration and the agreement check: the check
  tiles are never calibration tiles.
- candidates (``method``): ``static`` (activations calibrated with MinMax on the calibration
  tiles, uint8 activations x int8 per-channel weights, QOperator format: onnxruntime's fused
  ``QLinearMatMul``), ``static-qdq`` (the same as QuantizeLinear/DequantizeLinear pairs, which
  onnxruntime's graph optimiser fuses into ``QLinearMatMul`` / ``MatMulIntegerToFloat``),
  ``dynamic`` (int8 per-channel weights, activations quantised per batch at run time: the
  fused ``DynamicQuantizeMatMul``). Only MatMul and Gemm nodes are quantised: they carry
  almost all FLOPs (docs/performance.md); the patch embedding, norms, softmax stay float32.
  ``auto`` builds all three, and keeps the fastest on the check tiles among those that pass
  the agreement threshold, so static is used where it pays and dynamic where it does not.
- agreement (:func:`agreement_pct`): segmentation, percent of check-tile pixels whose argmax
  class equals float32's; single-label classification, percent of tiles; multilabel, percent
  of (tile, class) decisions at probability 0.5; embedding, mean cosine similarity x 100.
  Below ``min_agreement_pct`` (default 99) nothing is written: :class:`QuantisationError`.
- the variant keeps the model's I/O and its ``maestro`` metadata, plus a ``quantisation``
  object (:func:`read_quantisation`): method, format, types, agreement figure and threshold,
  tiles used, speed ratio measured at conversion, onnxruntime version, source model.

int8 pays on CPUs with VNNI dot-product instructions (x86 ``avx512_vnni`` / ``avx_vnni``);
elsewhere onnxruntime emulates them and an int8 variant is likely slower
(:func:`cpu_int8_support`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import InputError, MaestroError

METHODS = ("auto", "static", "static-qdq", "dynamic")
#: Default minimum agreement with float32, percent (issue 14: >= 99 % of pixels equal).
DEFAULT_MIN_AGREEMENT_PCT = 99.0
#: Key of the quantisation record inside the ``maestro`` metadata document.
QUANTISATION_KEY = "quantisation"
_QUANTISED_OPS = ["MatMul", "Gemm"]


class QuantisationError(MaestroError):
    """The int8 variant cannot be made or does not agree with float32 well enough."""


@dataclass
class QuantizeOptions:
    """How to make an int8 variant.

    Attributes:
        method: ``auto`` | ``static`` | ``static-qdq`` | ``dynamic`` (module docstring).
        min_agreement_pct: refuse a variant whose agreement with float32 on the check
            tiles is below this, percent (0..100).
        tiles: tiles to prepare from the rasters, calibration and check together (split by
            window, about half each).
        windows: number of windows spread over the reference raster the tiles come from.
        batch_size: tiles per onnxruntime call while preparing and checking.
        threads: onnxruntime intra-op threads (None = all cores).
    """

    method: str = "auto"
    min_agreement_pct: float = DEFAULT_MIN_AGREEMENT_PCT
    tiles: int = 64
    windows: int = 16
    batch_size: int = 8
    threads: int | None = None


@dataclass
class Candidate:
    """One variant tried: its method, agreement with float32 (percent) and timing."""

    method: str
    agreement_pct: float
    seconds: float
    passed: bool


@dataclass
class QuantizeReport:
    """What :func:`quantize_model` did.

    Attributes:
        output_path: the int8 model written.
        method: the method kept.
        agreement_pct: its agreement with float32 on the check tiles (metric: ``metric``).
        float32_seconds, int8_seconds: time of the check tiles on this machine (best of 3
            rounds, float32 and every candidate alternating).
        calibration_tiles, check_tiles: tiles used for each.
        candidates: every variant tried.
        int8_support: :func:`cpu_int8_support` of this machine (True, False, None = unknown).
        messages: log lines.
    """

    output_path: str
    method: str
    metric: str
    agreement_pct: float
    min_agreement_pct: float
    float32_seconds: float
    int8_seconds: float
    calibration_tiles: int
    check_tiles: int
    candidates: list[Candidate] = field(default_factory=list)
    int8_support: bool | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        """float32 time / int8 time on the check tiles (> 1: the variant is faster)."""
        return self.float32_seconds / self.int8_seconds if self.int8_seconds else float("nan")


# ----------------------------------------------------------------------------- the CPU
def cpu_int8_support(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU has int8 dot-product instructions onnxruntime's int8 kernels use
    (x86: ``avx512_vnni`` or ``avx_vnni`` in /proc/cpuinfo flags; AMX ``amx_int8`` also
    counts). None when it cannot be told (no /proc/cpuinfo: Windows, macOS)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if not flags:
        return None
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return True
    if "asimddp" in flags:          # ARM dot product (aarch64 /proc/cpuinfo "Features")
        return True
    return False


def int8_support_message(support: bool | None) -> str:
    """One line saying what int8 may bring on this CPU."""
    if support is True:
        return "this CPU has int8 dot-product instructions (VNNI): int8 variants can be faster"
    if support is False:
        return ("warning: this CPU lacks VNNI (avx512_vnni / avx_vnni): onnxruntime emulates "
                "int8 dot products, so an int8 variant will likely be slower than float32 here")
    return "could not tell whether this CPU has VNNI; the speed ratio below is what it measured"


# ----------------------------------------------------------------------------- tiles
_CAPTURE_LOCK = threading.Lock()


class _RecordingSession:
    """An onnxruntime session that records the inputs of every run (and lets the run go on)."""

    def __init__(self, session):
        self._session = session
        self.feeds: list[dict[str, np.ndarray]] = []
        self._lock = threading.Lock()

    def run(self, output_names, feeds, *args, **kwargs):
        with self._lock:
            self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self._session.run(output_names, feeds, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


@contextlib.contextmanager
def _recording(model_path: str):
    """Make the engine's session loader hand out a recording session for ``model_path``."""
    from . import session as session_mod

    original = session_mod.cached_session
    recorders: list[_RecordingSession] = []
    target = os.path.abspath(model_path)

    def recording_session(path, *args, **kwargs):
        sess, provider = original(path, *args, **kwargs)
        if os.path.abspath(path) != target:
            return sess, provider
        rec = _RecordingSession(sess)
        recorders.append(rec)
        return rec, provider

    with _CAPTURE_LOCK:
        session_mod.cached_session = recording_session
        try:
            yield recorders
        finally:
            session_mod.cached_session = original


def _window_bounds(inputs: Mapping[str, Sequence], reference: str, tile_px: int,
                   windows: int) -> list[tuple[float, float, float, float]]:
    """``windows`` squares of 2 x 2 tiles (reference raster pixels) on a regular grid over the
    reference raster of the first slice given for the reference modality."""
    import rasterio

    given = {str(k).lower(): v for k, v in inputs.items()}
    slices = list(given.get(reference) or [])
    if not slices:
        raise InputError(f"no raster given for the reference modality '{reference}'")
    first = slices[0]
    path = first if isinstance(first, (str, os.PathLike)) else first.path
    try:
        with rasterio.open(path) as src:
            left, bottom, right, top = src.bounds
            px, py = abs(src.transform.a), abs(src.transform.e)
    except Exception as exc:  # rasterio raises RasterioIOError and friends
        raise InputError(f"cannot open the reference raster '{path}': {exc}") from exc
    half_x, half_y = tile_px * px, tile_px * py                  # a window is 2 x 2 tiles
    k = max(1, math.ceil(math.sqrt(windows)))
    out = []
    for i in range(k):
        for j in range(k):
            cx = left + (j + 0.5) * (right - left) / k
            cy = top - (i + 0.5) * (top - bottom) / k
            x0, x1 = max(left, cx - half_x), min(right, cx + half_x)
            y0, y1 = max(bottom, cy - half_y), min(top, cy + half_y)
            if (x0, y0, x1, y1) not in out:
                out.append((x0, y0, x1, y1))
    return out[:max(1, windows)]


def capture_feeds(model_path: str, inputs: Mapping[str, Sequence], tiles: int = 64,
                  windows: int = 16, batch_size: int = 8, threads: int | None = None,
                  log: Callable[[str], None] | None = None) -> list[list[dict[str, np.ndarray]]]:
    """The onnxruntime inputs the engine prepares for ``model_path`` over ``windows`` small
    windows spread across the user's rasters, grouped by window.

    Each window (2 x 2 tiles of the reference grid, no overlap) is one
    :func:`engine.api.run_model` call, whose session is wrapped to record its inputs, so that
    the tiles are read, aligned, scaled and masked exactly as in a real run. Windows without
    valid data give no tiles. Stops once ``tiles`` tiles are collected.

    Returns:
        per window, its batches: dicts input name -> array (contract shapes, batch first).

    Raises:
        InputError etc. from the engine (bad rasters); QuantisationError when no tile has
        valid data in every modality.
    """
    from .api import RunOptions, run_model
    from .contract import read_model_metadata

    meta = read_model_metadata(model_path)
    bounds = _window_bounds(inputs, meta.reference_modality, meta.reference.tile_px, windows)
    out: list[list[dict]] = []
    total = 0
    with tempfile.TemporaryDirectory(prefix="maestro-quantize-") as tmp, \
            _recording(model_path) as recorders:
        for n, box in enumerate(bounds):
            if total >= tiles:
                break
            before = len(recorders)
            options = RunOptions(tile_overlap_pct=0, batch_size=batch_size, device="cpu",
                                 threads=threads, bounds=box, cog=False)
            run_model(model_path, inputs, os.path.join(tmp, f"window{n}.tif"), options)
            window = [f for rec in recorders[before:] for f in rec.feeds]
            if window:
                out.append(window)
                total += sum(_batch_len(f) for f in window)
    if not out:
        raise QuantisationError(
            f"no tile with valid data in every modality was found in {len(bounds)} windows "
            "spread over the rasters: nothing to calibrate on")
    if log:
        log(f"prepared {total} tiles in {len(out)} windows of the rasters")
    return out


def _batch_len(feeds: Mapping[str, np.ndarray]) -> int:
    return int(next(iter(feeds.values())).shape[0])


# ----------------------------------------------------------------------------- agreement
def agreement_pct(task: str, multilabel: bool, reference: Sequence[np.ndarray],
                  candidate: Sequence[np.ndarray]) -> tuple[float, str]:
    """Agreement of a variant's task outputs with float32's, percent, and the metric's name.

    Args:
        task: segmentation | classification | embedding.
        multilabel: classification with independent sigmoids.
        reference, candidate: per batch, the task output ([B, K, H, W] logits, [B, K] logits,
            or [B, D, h, w] embeddings).
    """
    if task == "embedding":
        sims = []
        for a, b in zip(reference, candidate):
            a = a.astype(np.float64)
            b = b.astype(np.float64)
            num = (a * b).sum(axis=1)
            den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            sims.append((num / np.where(den > 0, den, 1.0)).ravel())
        return 100.0 * float(np.concatenate(sims).mean()), "mean cosine similarity x 100"
    if task == "classification" and multilabel:
        same = [((a > 0) == (b > 0)).ravel() for a, b in zip(reference, candidate)]
        return 100.0 * float(np.concatenate(same).mean()), "% of (tile, class) decisions equal"
    same = [(a.argmax(axis=1) == b.argmax(axis=1)).ravel() for a, b in zip(reference, candidate)]
    what = "% of pixels with equal argmax" if task == "segmentation" else "% of tiles with equal argmax"
    return 100.0 * float(np.concatenate(same).mean()), what


# ----------------------------------------------------------------------------- conversion
class _Reader:
    """onnxruntime CalibrationDataReader over a list of feeds, with the ``set_range`` /
    ``__len__`` that onnxruntime's strided calibration uses (built lazily: the quantisation
    package is imported only when a conversion runs)."""

    @staticmethod
    def make(feeds: Sequence[Mapping[str, np.ndarray]]):
        from onnxruntime.quantization import CalibrationDataReader

        class Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter(feeds)

            def __len__(self):
                return len(feeds)

            def set_range(self, start_index: int, end_index: int):
                self._it = iter(feeds[start_index:end_index])

            def get_next(self):
                return next(self._it, None)

        return Reader()


def _convert(method: str, source: str, target: str, calibration: Sequence[Mapping[str, np.ndarray]],
             cache: str) -> dict:
    """Write the ``method`` variant of ``source`` (already pre-processed) to ``target``;
    returns its record (format, types).

    Static calibration runs one batch at a time (``CalibStridedMinMax`` = 1: the ranges of
    each batch are merged, so memory holds one batch's intermediate tensors, not all of
    them) and its ranges are kept in ``cache`` for the next static candidate."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    if method == "dynamic":
        quantize_dynamic(source, target, op_types_to_quantize=_QUANTISED_OPS, per_channel=True,
                         weight_type=QuantType.QInt8)
        return {"format": "QOperator (DynamicQuantizeMatMul)", "activations": "uint8, per batch",
                "weights": "int8 per channel", "calibration": None}
    fmt = QuantFormat.QOperator if method == "static" else QuantFormat.QDQ
    quantize_static(source, target, _Reader.make(calibration), quant_format=fmt,
                    op_types_to_quantize=_QUANTISED_OPS, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"CalibStridedMinMax": 1}, calibration_cache_path=cache)
    return {"format": "QOperator (QLinearMatMul)" if method == "static" else "QDQ",
            "activations": "uint8 per tensor", "weights": "int8 per channel",
            "calibration": "MinMax"}


def _session(path: str, threads: int | None):
    """A CPU session as the engine runs it: ``threads`` split between the batches in flight
    (engine.pipeline.split_threads), so the speed compared is the engine's."""
    from .pipeline import split_threads
    from .session import create_session

    return create_session(path, "cpu", split_threads(threads)[1])[0]


def _outputs(session, names: list[str],
             batches: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
    """The first output of ``session`` for every batch."""
    return [session.run(names, b)[0] for b in batches]


def _best_times(sessions: Mapping[str, Any], names: list[str],
                batches: Sequence[Mapping[str, np.ndarray]], threads: int | None = None,
                rounds: int = 3) -> dict[str, float]:
    """Best seconds over ``rounds`` of every session on ``batches``, run as the engine runs
    them (batches in flight, engine.pipeline), the sessions alternating within each round, so
    that load from other processes hits them alike."""
    from .pipeline import InFlight, split_threads

    in_flight = split_threads(threads)[0]
    best = {k: float("inf") for k in sessions}
    for _ in range(rounds):
        for key, session in sessions.items():
            def infer(batch, session=session):
                return session.run(names, batch)

            start = time.perf_counter()
            with InFlight(lambda batch: batch, infer, in_flight) as pipeline:
                for _ in pipeline.results(batches):
                    pass
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def _metadata_doc(path: str) -> dict:
    import onnx

    from .contract import METADATA_KEY

    model = onnx.load(path, load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    raise QuantisationError(f"'{path}' has no '{METADATA_KEY}' metadata")


def read_quantisation(path: str) -> dict | None:
    """The ``quantisation`` record of a model's ``maestro`` metadata (None for float32 models).

    Raises:
        ModelFileError, ContractError: as :func:`engine.contract.read_model_metadata`.
    """
    from .contract import METADATA_KEY
    from .session import inspect_model

    meta_map, _, _ = inspect_model(path)
    try:
        doc = json.loads(meta_map.get(METADATA_KEY, "{}"))
    except ValueError:
        return None
    record = doc.get(QUANTISATION_KEY) if isinstance(doc, dict) else None
    return record if isinstance(record, dict) else None


def _write_metadata(path: str, doc: dict) -> None:
    import onnx

    from .contract import METADATA_KEY

    model = onnx.load(path)
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(doc, sort_keys=True)
    onnx.save(model, path)


def _check_not_the_model(output_path: str, model_path: str) -> None:
    """Refuse an output that is the float32 model (same path, link or hard link), then an
    unwritable one, before any work.

    Raises:
        QuantisationError, OutputError.
    """
    from .paths import same_file
    from .writer import check_writable

    if same_file(output_path, model_path):
        raise QuantisationError(f"the output '{output_path}' would overwrite the float32 model "
                                f"'{model_path}': choose another file name")
    check_writable(output_path)


def quantize_feeds(model_path: str, calibration: Sequence[Mapping[str, np.ndarray]],
                   check: Sequence[Mapping[str, np.ndarray]], output_path: str,
                   options: QuantizeOptions | None = None,
                   log: Callable[[str], None] | None = None) -> QuantizeReport:
    """Make the int8 variant of ``model_path`` from prepared tiles, check it, write it.

    Args:
        model_path: a float32 MAESTRO ONNX model (any contract-valid one).
        calibration: batches of onnxruntime inputs for static calibration.
        check: batches of onnxruntime inputs on which the agreement is measured (keep them
            apart from ``calibration`` for an honest figure).
        output_path: the ``.onnx`` to write; written to a temporary name in its folder and
            renamed only once the check passed.
        options: method, threshold, threads (the tile options are not used here).

    Raises:
        QuantisationError: no candidate reaches ``options.min_agreement_pct`` (nothing is
            written), the model is already quantised, or onnxruntime fails to convert.
        OutputError: the output cannot be written.
    """
    from .contract import read_model_metadata

    options = options or QuantizeOptions()
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        if log:
            log(msg)

    if options.method not in METHODS:
        raise QuantisationError(f"method must be one of {METHODS} (got '{options.method}')")
    if float(options.min_agreement_pct) > 100.0:
        say(f"note: a minimum agreement of {options.min_agreement_pct} % cannot be reached")
    if not check or not calibration:
        raise QuantisationError("quantisation needs calibration tiles and check tiles")
    meta = read_model_metadata(model_path)
    doc = _metadata_doc(model_path)
    if isinstance(doc.get(QUANTISATION_KEY), dict):
        raise QuantisationError(f"'{model_path}' is already an int8 variant "
                                f"({doc[QUANTISATION_KEY].get('method')}); quantise its float32 model")
    _check_not_the_model(output_path, model_path)
    support = cpu_int8_support()
    say(int8_support_message(support))

    import onnxruntime as ort
    from onnxruntime.quantization import quant_pre_process

    names = [meta.output_name]
    sessions = {"float32": _session(model_path, options.threads)}
    reference = _outputs(sessions["float32"], names, check)
    methods = ["static", "static-qdq", "dynamic"] if options.method == "auto" else [options.method]
    folder = os.path.dirname(os.path.abspath(output_path))
    tmp = tempfile.mkdtemp(prefix=".maestro-quantize-", dir=folder)
    candidates: list[Candidate] = []
    records: dict[str, dict] = {}
    try:
        pre = os.path.join(tmp, "pre.onnx")
        try:
            # graph optimisation + ONNX shape inference, as onnxruntime advises before
            # quantising; symbolic shape inference is skipped (it cannot resolve the dynamic
            # batch and date axes of the contract graphs)
            quant_pre_process(model_path, pre, skip_symbolic_shape=True)
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises plain Exceptions)
            raise QuantisationError(f"onnxruntime could not prepare '{model_path}' for "
                                    f"quantisation: {exc}") from exc
        for method in methods:
            target = os.path.join(tmp, f"{method}.onnx")
            try:
                records[method] = _convert(method, pre, target, list(calibration),
                                           os.path.join(tmp, "calibration.json"))
                sessions[method] = _session(target, options.threads)
                outs = _outputs(sessions[method], names, check)
            except MaestroError:
                raise
            except Exception as exc:  # noqa: BLE001
                sessions.pop(method, None)
                say(f"{method}: onnxruntime could not make or run this variant ({exc})")
                continue
            pct, metric = agreement_pct(meta.task, meta.multilabel, reference, outs)
            candidates.append(Candidate(method, pct, float("nan"),
                                        pct >= float(options.min_agreement_pct)))
        times = _best_times(sessions, names, check, options.threads)
        t_float = times["float32"]
        n_check = sum(_batch_len(b) for b in check)
        for c in candidates:
            c.seconds = times[c.method]
            say(f"{c.method}: agreement {c.agreement_pct:.3f} ({metric}), "
                f"{t_float / c.seconds:.2f}x float32 speed on {n_check} check tiles"
                + ("" if c.passed else f": below the {options.min_agreement_pct} % threshold"))
        sessions.clear()
        good = [c for c in candidates if c.passed]
        if not good:
            tried = "; ".join(f"{c.method} {c.agreement_pct:.3f} %" for c in candidates) or "none ran"
            raise QuantisationError(
                f"no int8 variant of '{meta.name}' agrees with float32 on "
                f">= {options.min_agreement_pct} % of the check tiles ({tried}); nothing was "
                "written (calibrate on more or more typical tiles, or lower the threshold)")
        best = min(good, key=lambda c: c.seconds)
        _, metric = agreement_pct(meta.task, meta.multilabel, reference[:1], reference[:1])
        doc[QUANTISATION_KEY] = {
            "method": best.method, **records[best.method],
            "quantised_operators": list(_QUANTISED_OPS),
            "agreement": {"value": round(best.agreement_pct, 4), "metric": metric,
                          "threshold": float(options.min_agreement_pct),
                          "check_tiles": sum(_batch_len(b) for b in check)},
            "calibration_tiles": (sum(_batch_len(b) for b in calibration)
                                  if records[best.method]["calibration"] else 0),
            "speed_vs_float32_at_conversion": round(t_float / best.seconds, 3),
            "int8_dot_product_cpu": support,
            "onnxruntime": ort.__version__,
            "source_model": os.path.basename(model_path),
        }
        chosen = os.path.join(tmp, f"{best.method}.onnx")
        _write_metadata(chosen, doc)
        read_model_metadata(chosen)                     # still contract-valid
        os.replace(chosen, output_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"wrote {output_path}: {best.method}, agreement {best.agreement_pct:.3f} ({metric}), "
        f"{t_float / best.seconds:.2f}x float32 speed here")
    return QuantizeReport(output_path=output_path, method=best.method, metric=metric,
                          agreement_pct=best.agreement_pct,
                          min_agreement_pct=float(options.min_agreement_pct),
                          float32_seconds=t_float, int8_seconds=best.seconds,
                          calibration_tiles=sum(_batch_len(b) for b in calibration),
                          check_tiles=sum(_batch_len(b) for b in check),
                          candidates=candidates, int8_support=support, messages=messages)


def split_windows(windows: Sequence[Sequence[dict]]) -> tuple[list[dict], list[dict]]:
    """(calibration batches, check batches): windows alternate, so no tile is in both; a
    single window is split by batch, and a single batch by tile."""
    if len(windows) >= 2:
        calib = [b for w in windows[0::2] for b in w]
        check = [b for w in windows[1::2] for b in w]
        return calib, check
    batches = list(windows[0])
    if len(batches) >= 2:
        return batches[0::2], batches[1::2]
    one = batches[0]
    n = _batch_len(one)
    if n < 2:
        raise QuantisationError("only one tile has valid data: a check needs tiles apart "
                                "from the calibration tiles")
    half = n // 2
    return [{k: v[:half] for k, v in one.items()}], [{k: v[half:] for k, v in one.items()}]


def quantize_model(model_path: str, inputs: Mapping[str, Sequence], output_path: str,
                   options: QuantizeOptions | None = None,
                   log: Callable[[str], None] | None = None) -> QuantizeReport:
    """Make an int8 variant of ``model_path`` calibrated and checked on the user's rasters.

    Args:
        model_path: float32 MAESTRO ONNX model.
        inputs: as :func:`engine.api.run_model` (modality -> slices).
        output_path: ``.onnx`` file to write (only when the agreement check passes).
        options: :class:`QuantizeOptions`.
        log: receives one line per step.

    Raises:
        QuantisationError: agreement below the threshold (nothing written), no valid tile.
        InputError, ContractError, ModelFileError, OutputError: as run_model.
    """
    options = options or QuantizeOptions()
    if options.method not in METHODS:
        raise QuantisationError(f"method must be one of {METHODS} (got '{options.method}')")
    _check_not_the_model(output_path, model_path)
    windows = capture_feeds(model_path, inputs, options.tiles, options.windows,
                            options.batch_size, options.threads, log)
    calibration, check = split_windows(windows)
    return quantize_feeds(model_path, calibration, check, output_path, options, log)
