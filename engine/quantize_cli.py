"""``python -m engine quantize``: an int8 variant of a model, calibrated and checked on the
user's rasters (engine/quantize.py). Registered in engine/cli.py's SUBCOMMANDS.

    python -m engine quantize --model M.onnx --input s2=a.tif --input s2=b.tif \\
        --input dem=dem.tif --output M.int8.onnx [--method auto] [--min-agreement 99]

Prints a JSON report on stdout (method kept, agreement, speed ratio measured here, every
candidate); exit status 2 with one line on stderr when no variant reaches the threshold
(nothing is written).
"""
from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    from .cli_common import add_model_and_inputs
    from .quantize import DEFAULT_MIN_AGREEMENT_PCT, METHODS

    p = subparsers.add_parser(
        "quantize", help="write an int8 variant of a model, checked against float32 on your tiles")
    add_model_and_inputs(p, "float32 ONNX model exported by MAESTRO's training",
                         "an input raster of modality M (repeat: one per date and modality); "
                         "calibration and check tiles are read from these")
    p.add_argument("--output", required=True, help="the int8 model to write (.onnx)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default: the fastest variant that passes the check), static, "
                        "static-qdq, dynamic")
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT_PCT,
                   metavar="PCT", help="refuse a variant below this agreement with float32, "
                                       "percent (default %(default)s)")
    p.add_argument("--tiles", type=int, default=64, help="tiles for calibration + check")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    p.add_argument("--quiet", action="store_true")


def main(args) -> int:
    from .api import SliceInput
    from .errors import MaestroError
    from .quantize import QuantizeOptions, quantize_model

    given = {(m, p): d for m, p, d in args.date}
    inputs: dict[str, list] = {}
    for modality, path in args.input:
        inputs.setdefault(modality, []).append(SliceInput(path, given.pop((modality, path), None)))
    if given:
        raise MaestroError(f"--date names inputs that are not given with --input: "
                           f"{[f'{m}={p}' for m, p in given]}")
    def say(msg: str) -> None:  # warnings (e.g. no VNNI: int8 likely slower) even when quiet
        if not args.quiet or msg.startswith("warning"):
            print(msg, file=sys.stderr)
    options = QuantizeOptions(method=args.method, min_agreement_pct=args.min_agreement,
                              tiles=args.tiles, threads=args.threads)
    report = quantize_model(args.model, inputs, args.output, options, log=say)
    print(json.dumps({
        "output": report.output_path, "method": report.method,
        "agreement_pct": round(report.agreement_pct, 4), "metric": report.metric,
        "min_agreement_pct": report.min_agreement_pct,
        "speed_vs_float32": round(report.speedup, 3),
        "calibration_tiles": report.calibration_tiles, "check_tiles": report.check_tiles,
        "int8_dot_product_cpu": report.int8_support,
        "candidates": [{"method": c.method, "agreement_pct": round(c.agreement_pct, 4),
                        "seconds": round(c.seconds, 4), "passed": c.passed}
                       for c in report.candidates]}, indent=1))
    return 0
