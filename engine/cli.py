"""Command line: ``python -m engine run ...`` and ``python -m engine info MODEL``.

Each subcommand is an entry of :data:`SUBCOMMANDS`: ``name -> (add_parser, main)`` where
``add_parser(subparsers)`` registers its argparse sub-parser and ``main(args) -> int`` runs it.
``engine/batch/cli.py`` (when present) adds ``batch`` the same way.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Callable

from .errors import MaestroError


def _parse_input(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--input must be MODALITY=PATH (got '{text}')")
    return name.lower(), path


def _parse_date(text: str) -> tuple[str, str, _dt.date]:
    name, sep, rest = text.partition("=")
    path, sep2, day = rest.rpartition("=")
    if not (sep and sep2 and name and path):
        raise argparse.ArgumentTypeError(f"--date must be MODALITY=PATH=YYYY-MM-DD (got '{text}')")
    try:
        return name.lower(), path, _dt.date.fromisoformat(day)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--date: '{day}' is not YYYY-MM-DD") from exc


def add_run_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a model over rasters and write its output raster")
    p.add_argument("--model", required=True, help="ONNX model exported by MAESTRO's training")
    p.add_argument("--input", action="append", type=_parse_input, default=[], metavar="M=PATH",
                   help="an input raster of modality M (repeat: one per date and modality)")
    p.add_argument("--date", action="append", type=_parse_date, default=[],
                   metavar="M=PATH=YYYY-MM-DD", help="explicit date of one input raster")
    p.add_argument("--output", required=True, help="output GeoTIFF (COG)")
    p.add_argument("--confidence", default=None, help="optional confidence GeoTIFF")
    p.add_argument("--overlap", type=float, default=25, help="tile overlap, percent (0-75)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    p.add_argument("--bounds", type=float, nargs=4, default=None,
                   metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                   help="compute only this area (reference raster CRS)")
    p.add_argument("--no-cog", action="store_true", help="write a tiled GeoTIFF, not a COG")
    p.add_argument("--quiet", action="store_true")


def main_run(args) -> int:
    from .api import RunOptions, SliceInput, run_model

    given = {(m, p): d for m, p, d in args.date}
    inputs: dict[str, list[SliceInput]] = {}
    for modality, path in args.input:
        inputs.setdefault(modality, []).append(SliceInput(path, given.pop((modality, path), None)))
    if given:
        raise MaestroError(f"--date names inputs that are not given with --input: "
                           f"{[f'{m}={p}' for m, p in given]}")
    options = RunOptions(tile_overlap_pct=args.overlap, batch_size=args.batch_size,
                         device=args.device, threads=args.threads,
                         confidence_path=args.confidence,
                         bounds=tuple(args.bounds) if args.bounds else None, cog=not args.no_cog)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    last = [-1]

    def progress(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if not args.quiet and pct // 10 != last[0] // 10:
            print(f"{pct:3d}% {message}", file=sys.stderr)
        last[0] = pct

    report = run_model(args.model, inputs, args.output, options, progress=progress, log=say)
    print(json.dumps({"output": report.output_path, "confidence": report.confidence_path,
                      "provider": report.provider, "task": report.task, "tiles": report.tiles,
                      "seconds": round(report.seconds, 3), "dates": report.dates}, indent=1))
    return 0


def add_info_parser(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model's metadata and the available providers")
    p.add_argument("model")


def main_info(args) -> int:
    from .contract import read_model_metadata
    from .session import available_providers

    meta = read_model_metadata(args.model)
    doc = meta.to_dict()
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except MaestroError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
