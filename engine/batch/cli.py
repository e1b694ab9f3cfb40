"""``python -m engine batch``: the large-area runner on Dask distributed.

Registered in ``engine.cli.SUBCOMMANDS``; also runnable alone as ``python -m engine.batch.cli``.

Examples::

    python -m engine batch --model model.onnx --input s2=s2_20240501.vrt \\
        --input s2=s2_20240815.vrt --input dem=dem.vrt --output out/region \\
        --area-vector region.gpkg --block-px 1024
    python -m engine batch ... --scheduler tcp://10.0.0.5:8786      # an existing cluster
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from engine.cli_common import add_model_and_inputs, check_bounds, one_line, report_unexpected
from engine.errors import InputError, MaestroError, OutputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to the engine CLI's subparsers."""
    p = subparsers.add_parser(
        "batch", help="run a model over a large area, block by block, on Dask (resumable)",
        description="Split an area into blocks aligned to the reference raster's grid and run "
                    "one engine call per block as a Dask task. Each block writes blocks/<id>.tif "
                    "(COG); mosaic.vrt covers them all. Re-running the same command skips the "
                    "blocks recorded as finished in manifest.json.")
    _fill(p)
    return p


def _fill(p: argparse.ArgumentParser) -> None:
    # Same conventions as ``python -m engine run`` (engine/cli.py): --model, --input M=PATH,
    # --date M=PATH=YYYY-MM-DD, --overlap, --batch-size, --device, --threads, --float16
    # (not --batches-in-flight: each worker runs one block at a time, the engine's auto).

    add_model_and_inputs(p, input_help="an input raster (file or VRT mosaic) of modality M: "
                         "repeat per date and modality, e.g. --input s2=a.tif --input s2=b.vrt "
                         "--input dem=dem.vrt")
    p.add_argument("--output", required=True,
                   help="output folder: blocks/<id>.tif, manifest.json, mosaic.vrt")
    area = p.add_mutually_exclusive_group()
    area.add_argument("--area-raster", metavar="PATH", help="area = this raster's extent")
    area.add_argument("--area-vector", metavar="PATH",
                      help="area = this vector layer's extent (any OGR format)")
    area.add_argument("--area-bounds", type=float, nargs=4,
                      metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                      help="area in the reference raster's CRS")
    area.add_argument("--block-bounds", type=float, nargs=4, action="append",
                      metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                      help="one explicit block (reference CRS); repeat for a list of blocks")
    p.add_argument("--area-crs", metavar="CRS",
                   help="CRS of --area-bounds/--block-bounds (EPSG:4326, WKT...); default: "
                        "the reference raster's")
    p.add_argument("--block-px", type=int, default=1024,
                   help="block side in reference pixels, rounded up to the model's tile "
                        "(default 1024)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="submit to this Dask scheduler instead of starting a local cluster")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--threads", type=int, default=None,
                   help="onnxruntime threads per block task (default: cores / workers)")
    p.add_argument("--retries", type=int, default=3, help="retries of a failed block (default 3)")
    p.add_argument("--merged-cog", action="store_true", help="also write mosaic.tif (one COG)")
    p.add_argument("--restart", action="store_true",
                   help="discard a job with other parameters found in the output folder")
    p.add_argument("--overlap", type=float, default=25, help="tile overlap, percent (0-75)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--float16", action="store_true", default=None,
                   help="on an NVIDIA GPU (CUDA), every block runs a float16 copy of the model "
                        "(faster, outputs differ slightly); ignored on CPU. Default: the "
                        "MAESTRO_FLOAT16 environment variable of the workers")
    p.add_argument("--progress", default="text", choices=["text", "json"],
                   help="progress lines on stdout: text, or JSON lines (for the QGIS algorithm)")


def collect_inputs(args: argparse.Namespace) -> dict[str, list[tuple[str, str | None]]]:
    """``--input``/``--date`` -> ``{modality: [(path, ISO date | None)]}``."""
    given = {(m, p): d for m, p, d in args.date}
    inputs: dict[str, list[tuple[str, str | None]]] = {}
    for modality, path in args.input:
        day = given.pop((modality, path), None)
        inputs.setdefault(modality, []).append((path, day.isoformat() if day else None))
    if given:
        raise InputError(f"--date names inputs that are not given with --input: "
                         f"{[f'{m}={p}' for m, p in given]}")
    if not inputs:
        raise InputError("No --input given: pass M=PATH for every modality of the model.")
    return inputs


def check_batch_args(args: argparse.Namespace) -> None:
    """Refuse up front an empty output folder, bad bounds and impossible numbers.

    Raises:
        OutputError, InputError: naming the option.
    """
    if not args.output.strip():
        raise OutputError("--output: no output folder given (empty path)")
    check_bounds(args.area_bounds, "--area-bounds")
    for b in args.block_bounds or []:
        check_bounds(b, "--block-bounds")
    for option, value, low in (("--block-px", args.block_px, 1), ("--retries", args.retries, 0),
                               ("--batch-size", args.batch_size, 1)):
        if value < low:
            raise InputError(f"{option} {value} must be at least {low}")
    for option, value in (("--workers", args.workers), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise InputError(f"{option} {value} must be at least 1")


def main(args: argparse.Namespace) -> int:
    """Run the batch job; prints progress and a summary; returns the exit status."""
    from engine.types import RunOptions

    from .runner import BatchArea, BatchOptions, run_batch

    as_json = args.progress == "json"
    _interrupt_on_signals()

    def emit(kind: str, **fields) -> None:
        if as_json:
            print(json.dumps({"event": kind, **fields}), flush=True)
        elif kind == "log":
            print(fields["message"], flush=True)
        elif kind == "progress":
            print(f"[batch] {fields['message']}", flush=True)

    try:
        check_batch_args(args)
        report = run_batch(
            args.model, collect_inputs(args), args.output,
            BatchOptions(block_px=args.block_px, workers=args.workers, scheduler=args.scheduler,
                         retries=args.retries, merged_cog=args.merged_cog, restart=args.restart,
                         run=RunOptions(threads=args.threads, tile_overlap_pct=args.overlap,
                                        batch_size=args.batch_size, device=args.device,
                                        float16=args.float16)),
            area=BatchArea(
                raster=args.area_raster, vector=args.area_vector,
                bounds=tuple(args.area_bounds) if args.area_bounds else None,
                block_extents=([tuple(b) for b in args.block_bounds] if args.block_bounds
                               else None),
                crs=args.area_crs),
            progress=lambda done, total, message: emit("progress", done=done, total=total,
                                                       message=message),
            log=lambda message: emit("log", message=message))
    except KeyboardInterrupt:
        emit("error", message="Interrupted: the finished blocks are recorded; run the same "
                              "command again to resume.", error="KeyboardInterrupt")
        if not as_json:
            print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except MaestroError as exc:
        # Exit status 2 for engine errors, as ``python -m engine run``.
        emit("error", message=one_line(exc), error=type(exc).__name__)
        if not as_json:
            print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 (a bug or an unforeseen input: one line)
        if os.environ.get("MAESTRO_DEBUG"):
            raise
        where = report_unexpected(exc)
        message = (f"unexpected {type(exc).__name__}: {one_line(exc)}"
                   + (f" (traceback in {where})" if where else ""))
        emit("error", message=message, error=type(exc).__name__)
        if not as_json:
            print(f"error: {message}", file=sys.stderr)
        return 3
    summary = {"blocks_total": report.blocks_total, "blocks_skipped": report.blocks_skipped,
               "blocks_run": report.blocks_run, "redone": report.redone,
               "workers": report.workers, "seconds": round(report.seconds, 2),
               "blocks_per_hour": round(report.throughput_blocks_s * 3600, 1),
               "mpx_per_s": round(report.throughput_px_s / 1e6, 3),
               "vrt": report.vrt_path, "cog": report.cog_path, "provider": report.provider,
               "dates": report.dates}
    if as_json:
        emit("done", **summary)
    else:
        print(f"Done: {report.blocks_run} blocks computed, {report.blocks_skipped} skipped "
              f"(already finished), {report.blocks_total} in all, {report.seconds:.1f} s "
              f"({summary['blocks_per_hour']} blocks/h with {report.workers} workers)")
        print(f"Mosaic: {report.vrt_path}" + (f"; merged COG: {report.cog_path}"
                                               if report.cog_path else ""))
        if report.dates:
            print("Dates the model saw (all blocks): " + "; ".join(
                f"{name} {', '.join(days)}" for name, days in sorted(report.dates.items())))
    return 0


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the job cleanly (manifest saved, cluster closed), even when the
    parent started this process with SIGINT ignored (a background job of a script)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)


def _standalone(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.batch.cli")
    _fill(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    # Dask worker processes are spawned: keep the entry point under the main guard.
    sys.exit(_standalone())
