"""Command line: ``python -m engine run ...`` and ``python -m engine info MODEL``.

Each subcommand is an entry of :data:`SUBCOMMANDS`: ``name -> (add_parser, main)`` where
``add_parser(subparsers)`` registers its argparse sub-parser and ``main(args) -> int`` runs it.
``engine/batch/cli.py`` (when present) adds ``batch`` the same way.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from typing import Callable

from .cli_common import add_model_and_inputs, check_bounds, one_line, report_unexpected
from .errors import InputError, MaestroError, OutputError

#: Extensions of the rasters ``run`` writes (GeoTIFF / COG only).
GEOTIFF_EXTENSIONS = (".tif", ".tiff")


def check_raster_output(path: str | None, option: str) -> None:
    """Refuse an empty output path or one that is not a GeoTIFF name (.tif, .tiff).

    Raises:
        OutputError: naming the option and the path.
    """
    if path is None:
        return
    if not path.strip():
        raise OutputError(f"{option}: no file given (empty path)")
    if os.path.splitext(path)[1].lower() not in GEOTIFF_EXTENSIONS:
        raise OutputError(f"{option} '{path}' is not a GeoTIFF name: the engine writes GeoTIFF "
                          f"(COG) only; use a {' or '.join(GEOTIFF_EXTENSIONS)} extension")


def check_run_numbers(args) -> None:
    """Overlap 0..75 %, batch size, threads and batches in flight at least 1.

    Raises:
        InputError: naming the option and the value given.
    """
    if not (math.isfinite(args.overlap) and 0 <= args.overlap <= 75):
        raise InputError(f"--overlap {args.overlap} must be a percentage from 0 to 75")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size} must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads} must be at least 1")
    in_flight = getattr(args, "batches_in_flight", None)
    if in_flight is not None and in_flight < 1:
        raise InputError(f"--batches-in-flight {in_flight} must be at least 1 "
                         "(leave it out for auto)")


def add_run_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a model over rasters and write its output raster")
    add_model_and_inputs(p)
    p.add_argument("--output", required=True, help="output GeoTIFF (COG)")
    p.add_argument("--confidence", default=None, help="optional confidence GeoTIFF")
    p.add_argument("--overlap", type=float, default=25, help="tile overlap, percent (0-75)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads the run may use (default: all cores)")
    p.add_argument("--batches-in-flight", type=int, default=None, metavar="N",
                   help="batches run at once, each on threads/N onnxruntime threads, blended "
                        "in tile order (same output as one after the other); default auto = "
                        "min(threads, 4) on CPU, 1 on CUDA")
    p.add_argument("--float16", action="store_true", default=None,
                   help="on an NVIDIA GPU (CUDA), run a float16 copy of the model (faster, "
                        "outputs differ slightly); ignored on CPU. Default: the "
                        "MAESTRO_FLOAT16 environment variable")
    p.add_argument("--bounds-crs", default=None, metavar="CRS",
                   help="CRS of --bounds (EPSG:4326, EPSG:32633, WKT...); default: the reference "
                        "raster's CRS")
    p.add_argument("--bounds", type=float, nargs=4, default=None,
                   metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                   help="compute only this area (in --bounds-crs; default the reference "
                        "raster's CRS)")
    p.add_argument("--no-cog", action="store_true", help="write a tiled GeoTIFF, not a COG")
    p.add_argument("--quiet", action="store_true")


def main_run(args) -> int:
    from .api import RunOptions, SliceInput, run_model
    from .paths import check_outputs

    check_raster_output(args.output, "--output")
    check_raster_output(args.confidence, "--confidence")
    check_bounds(args.bounds)
    check_run_numbers(args)
    check_outputs({"--output": args.output, "--confidence": args.confidence},
                  [("model file", args.model)] + [(f"{m} input", p) for m, p in args.input])
    given = {(m, p): d for m, p, d in args.date}
    inputs: dict[str, list[SliceInput]] = {}
    for modality, path in args.input:
        inputs.setdefault(modality, []).append(SliceInput(path, given.pop((modality, path), None)))
    if given:
        raise InputError(f"--date names inputs that are not given with --input: "
                           f"{[f'{m}={p}' for m, p in given]}")
    options = RunOptions(tile_overlap_pct=args.overlap, batch_size=args.batch_size,
                         device=args.device, threads=args.threads,
                         batches_in_flight=args.batches_in_flight, float16=args.float16,
                         confidence_path=args.confidence,
                         bounds=tuple(args.bounds) if args.bounds else None,
                         bounds_crs=args.bounds_crs, cog=not args.no_cog)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    last = [-1]

    def progress(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if not args.quiet and pct // 10 != last[0] // 10:
            print(f"{pct:3d}% {message}", file=sys.stderr)
        last[0] = pct

    report = run_model(args.model, inputs, args.output, options, progress=progress, log=say,
                       is_cancelled=lambda: _STOP["signal"] is not None)
    print(json.dumps({"output": report.output_path, "confidence": report.confidence_path,
                      "provider": report.provider, "task": report.task, "tiles": report.tiles,
                      "seconds": round(report.seconds, 3), "dates": report.dates}, indent=1))
    return 0


def add_info_parser(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model's metadata and the available providers")
    p.add_argument("model")


def precision_summary(record: dict | None) -> str:
    """One line saying a model's numeric precision from its ``quantisation`` record
    (engine.quantize.read_quantisation): ``float32 (not quantised)`` when there is none."""
    if not record:
        return "float32 (not quantised)"
    return f"int8 ({record.get('method', '?')}, {record.get('format', '?')})"


def main_info(args) -> int:
    """Print the model's validated metadata as JSON, plus ``precision``, ``quantisation`` (the
    int8 record, null for float32 models), ``int8_on_this_cpu`` (int8 variants only: whether
    this CPU has int8 dot-product instructions) and ``available_providers``. For an int8
    variant on a CPU without them, a warning line goes to stderr as well."""
    from .contract import read_model_metadata
    from .quantize import cpu_int8_support, int8_support_message, read_quantisation
    from .session import available_providers

    meta = read_model_metadata(args.model)
    doc = meta.to_dict()
    record = read_quantisation(args.model)
    doc["precision"] = precision_summary(record)
    doc["quantisation"] = record
    if record:
        support = cpu_int8_support()
        doc["int8_on_this_cpu"] = {"int8_dot_product_cpu": support,
                                   "note": int8_support_message(support)}
        if support is False:
            print(int8_support_message(support), file=sys.stderr)
    doc["available_providers"] = available_providers()
    print(json.dumps(doc, indent=1))
    return 0


SUBCOMMANDS: dict[str, tuple[Callable, Callable]] = {
    "run": (add_run_parser, main_run),
    "info": (add_info_parser, main_info),
}


def _register_optional() -> None:
    from . import quantize_cli  # issue 14: int8 variants (engine/quantize_cli.py)
    SUBCOMMANDS.setdefault("quantize", (quantize_cli.add_parser, quantize_cli.main))
    try:
        from .batch import cli as batch_cli  # added by the batch runner when present
    except ImportError:
        return
    SUBCOMMANDS.setdefault("batch", (batch_cli.add_parser, batch_cli.main))


def build_parser() -> argparse.ArgumentParser:
    _register_optional()
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="MAESTRO inference engine (no QGIS needed)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, main in SUBCOMMANDS.values():
        before = set(sub.choices)
        add_parser(sub)
        for name in set(sub.choices) - before:
            sub.choices[name].set_defaults(_main=main)
    return parser


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: unwinds the run like Ctrl-C (every ``finally`` and
    ``except BaseException`` clean-up runs: temporaries removed, nothing under the final name)."""


#: The signal that asked the run to stop (None while running).
_STOP: dict = {"signal": None}


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT stop the command as a cancel does: the handler raises
    :class:`Interrupted` in the main thread, whose clean-up removes the temporary files
    (``python -m engine batch`` installs its own handlers, which keep the manifest)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        first = _STOP["signal"] is None
        _STOP["signal"] = signal.Signals(signum).name
        if first:
            raise Interrupted(_STOP["signal"])

    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)


def _quiet_gdal() -> None:
    """GDAL's default error handler prints ``ERROR 1: ...`` lines on stderr beside the
    engine's own error line; the engine's errors already carry GDAL's message. Silence it
    (unless MAESTRO_DEBUG is set); rasterio still reads the last error for its exceptions."""
    if os.environ.get("MAESTRO_DEBUG"):
        return
    try:
        from osgeo import gdal
    except ImportError:
        return
    gdal.SetErrorHandler("CPLQuietErrorHandler")  # global: tiles are read in another thread


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand; every error is one line ``error: Type: message``
    on stderr (exit status 2; 130 when interrupted), never a traceback (an unexpected
    error's traceback goes to :data:`engine.cli_common.DEBUG_LOG`, or to stderr with
    MAESTRO_DEBUG=1)."""
    args = build_parser().parse_args(argv)
    _quiet_gdal()
    if args._main is main_run:
        _stop_on_signals()
    try:
        return int(args._main(args) or 0)
    except MaestroError as exc:
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        name = _STOP["signal"] or "SIGINT"
        print(f"error: CancelledError: stopped by {name}; no output was written (its "
              "temporary files were removed)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 (a bug or an unforeseen input: one line)
        if os.environ.get("MAESTRO_DEBUG"):
            raise
        where = report_unexpected(exc)
        print(f"error: unexpected {type(exc).__name__}: {one_line(exc)}"
              + (f" (traceback in {where}; MAESTRO_DEBUG=1 prints it)" if where else ""),
              file=sys.stderr)
        return 3
