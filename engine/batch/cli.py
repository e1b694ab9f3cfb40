"""``python -m engine batch``: the large-area runner on Dask distributed.

Registered in ``engine.cli.SUBCOMMANDS``; also runnable alone as ``python -m engine.batch.cli``.

Examples::

    python -m engine batch model.onnx --input s2=s2_20240501.vrt --input s2=s2_20240815.vrt \\
        --input dem=dem.vrt --out out/region --area-vector region.gpkg --block-px 1024
    python -m engine batch ... --scheduler tcp://10.0.0.5:8786      # an existing cluster
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.errors import MaestroError


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
    p.add_argument("model", help="ONNX model file (MAESTRO contract)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="MODALITY=PATH[@DATE]",
                   help="one raster (file or VRT mosaic) of one date; repeat per date and "
                        "modality, e.g. -i s2=a.tif -i s2=b.tif -i dem=dem.vrt. @YYYY-MM-DD "
                        "overrides the date read from tags or the file name")
    p.add_argument("--out", "-o", required=True, help="output folder (created)")
    area = p.add_mutually_exclusive_group()
    area.add_argument("--area-raster", metavar="PATH", help="area = this raster's extent")
    area.add_argument("--area-vector", metavar="PATH", help="area = this vector layer's extent")
    area.add_argument("--area-bounds", metavar="XMIN,YMIN,XMAX,YMAX",
                      help="area in the reference raster's CRS")
    area.add_argument("--block-bounds", action="append", metavar="XMIN,YMIN,XMAX,YMAX",
                      help="an explicit block extent (repeat for a list of blocks)")
    p.add_argument("--block-px", type=int, default=1024,
                   help="block side in reference pixels (default 1024)")
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
    p.add_argument("--overlap", type=float, default=25, help="tile overlap, percent (default 25)")
    p.add_argument("--batch-size", type=int, default=8, help="tiles per inference batch")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--progress", default="text", choices=["text", "json"],
                   help="progress lines on stdout: text, or JSON lines (for the QGIS algorithm)")


def parse_inputs(items: list[str]) -> dict[str, list[tuple[str, str | None]]]:
    """``["s2=a.tif", "s2=b.tif@2024-05-01"]`` -> ``{"s2": [("a.tif", None), ("b.tif", "2024-05-01")]}``."""
    from engine.errors import InputError

    out: dict[str, list[tuple[str, str | None]]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--input {item!r}: expected MODALITY=PATH (e.g. s2=scene.tif)")
        date = None
        if "@" in path:
            path, _, date = path.rpartition("@")
        out.setdefault(name.strip().lower(), []).append((path, date or None))
    if not out:
        raise InputError("No --input given: pass MODALITY=PATH for every modality of the model.")
    return out


def main(args: argparse.Namespace) -> int:
    """Run the batch job; prints progress and a summary; returns the exit status."""
    from .blocks import parse_bounds
    from .runner import BatchOptions, run_batch

    as_json = args.progress == "json"

    def emit(kind: str, **fields) -> None:
        if as_json:
            print(json.dumps({"event": kind, **fields}), flush=True)
        elif kind == "log":
            print(fields["message"], flush=True)
        elif kind == "progress":
            print(f"[batch] {fields['message']}", flush=True)

    try:
        report = run_batch(
            args.model, parse_inputs(args.input), args.out,
            BatchOptions(block_px=args.block_px, workers=args.workers, scheduler=args.scheduler,
                         retries=args.retries, merged_cog=args.merged_cog, restart=args.restart,
                         threads=args.threads, tile_overlap_pct=args.overlap,
                         batch_size=args.batch_size, device=args.device),
            area_raster=args.area_raster, area_vector=args.area_vector,
            area_bounds=parse_bounds(args.area_bounds) if args.area_bounds else None,
            block_extents=[parse_bounds(b) for b in args.block_bounds] if args.block_bounds else None,
            progress=lambda done, total, message: emit("progress", done=done, total=total,
                                                       message=message),
            log=lambda message: emit("log", message=message))
    except MaestroError as exc:
        emit("error", message=str(exc))
        if not as_json:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = {"blocks_total": report.blocks_total, "blocks_skipped": report.blocks_skipped,
               "blocks_run": report.blocks_run, "redone": report.redone,
               "workers": report.workers, "seconds": round(report.seconds, 2),
               "blocks_per_hour": round(report.throughput_blocks_s * 3600, 1),
               "mpx_per_s": round(report.throughput_px_s / 1e6, 3),
               "vrt": report.vrt_path, "cog": report.cog_path}
    if as_json:
        emit("done", **summary)
    else:
        print(f"Done: {report.blocks_run} blocks computed, {report.blocks_skipped} skipped "
              f"(already finished), {report.blocks_total} in all, {report.seconds:.1f} s "
              f"({summary['blocks_per_hour']} blocks/h with {report.workers} workers)")
        print(f"Mosaic: {report.vrt_path}" + (f"; merged COG: {report.cog_path}"
                                               if report.cog_path else ""))
    return 0


def _standalone(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.batch.cli")
    _fill(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    # Dask worker processes are spawned: keep the entry point under the main guard.
    sys.exit(_standalone())
