"""Real-size throughput: FLOPs per km2 and km2 per minute, float32 and int8, next to the
physical limit of this machine (issue 14 item 3).

    bash scripts/with-env.sh .venv/bin/python -m bench.throughput_bench [--threads 2]
        [--models bundled,tiny,base] [--dates 5,20] [--rounds 3]

Models: the bundled model (resources/models, S2 5 dates + DEM, its own tile of 32 px) on its
bundled Slovenia sample, and MAESTRO-tiny and -base (training.models.Maestro, official size
presets, random weights: speed does not depend on them) for a Sentinel-2 10 m stack (10
bands, tiles of 16 px with 2 px patches as MAESTRO's PASTIS-HD setting) of 5 and 20 dates,
fed with the real Slovenia time series (5 scenes; 20 dates repeat them with other dates).

Per model and precision, on the same tiles in memory, run as the engine runs them
(engine.session.create_session; min(threads, 4) batches in flight through
engine.pipeline.InFlight, each on threads // in flight intra-op threads), best of ``rounds``
with float32 and int8 alternating:
- FLOPs per tile: 2 x output elements x inner dimension of every MatMul/Gemm/FusedMatMul in
  onnxruntime's profile of the float32 model (bench.engine_bench.onnx_matmul_flops; within
  0.2 % of torch's FlopCounterMode on the benchmark model, docs/performance.md);
- FLOPs per km2 = FLOPs per tile x tiles per km2 (no overlap: (1000 / (tile_px x 10 m))^2; the
  engine's default overlap of 25 % multiplies the tiles by (4/3)^2 = 1.78);
- km2 per minute measured, and the physical limit = best matmul rate of the same precision /
  FLOPs per km2 (float32: best of numpy, torch, onnxruntime at 4096^3 and onnxruntime
  ``MatMul`` at the shapes of :data:`PEAK_SHAPES`; int8: onnxruntime ``MatMulInteger`` uint8 x
  int8 at those shapes);
- the int8 variant is made by engine.quantize.quantize_feeds (method ``auto``: the fastest
  of static QOperator, static QDQ and dynamic on its check tiles) calibrated on other tiles of
  the same data, once, and kept in data-cache/bench/int8 (``--prepare`` makes them ahead);
  for random-weight models the agreement threshold is 0 (the agreement is printed: logits of
  random weights are near ties, so it is no quality figure); for the bundled model it is the
  default 99 %;
- a 100 km x 100 km area (10^4 km2) in hours at the measured rate.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np

from bench.peaks import PEAK_SHAPES, _timed, matmul_peak, ort_rates  # noqa: F401
from bench.engine_bench import CACHE, ROOT, SLOVENIA, onnx_matmul_flops, run_batches
from engine.pipeline import split_threads

TILE, PATCH, GSD_M = 16, 2, 10.0
S2_INDEX = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
BUNDLED = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
AREA_KM2 = 100 * 100


# ----------------------------------------------------------------------------- tiles
def slovenia_s2(dates: int, tile: int, n_tiles: int, offset: int = 0) -> dict[str, np.ndarray]:
    """``n_tiles`` real S2 tiles of the Slovenia patch, ``dates`` dates (the 5 scenes repeated
    with later dates), scaled as the engine does (reflectance x 10000 / 5000)."""
    s2 = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))       # [5, H, W, 13]
    order = [4, 1, 0, 3, 2]                  # 2015-07-11, -07-31, -08-20, -08-30, -09-09
    doys = [192, 212, 232, 242, 252]
    x = s2[order][..., S2_INDEX].transpose(0, 3, 1, 2) * 2.0                 # [5, 10, H, W]
    h, w = x.shape[-2:]
    spots = [(r, c) for r in range(0, h - tile + 1, max(1, tile // 2))
             for c in range(0, w - tile + 1, max(1, tile // 2))]
    rng = np.random.default_rng(offset)
    picks = [spots[i] for i in rng.choice(len(spots), n_tiles, replace=len(spots) < n_tiles)]
    reps = -(-dates // 5)
    tiles = np.stack([np.concatenate([x[:, :, r:r + tile, c:c + tile]] * reps)[:dates]
                      for r, c in picks]).astype(np.float32)
    when = np.array([[2015 + k // 5, doys[k % 5], 0] for k in range(dates)], np.int32)
    return {"s2": tiles, "s2_dates": np.repeat(when[None], n_tiles, 0),
            "ref_date": np.repeat(when[:1], n_tiles, 0)}


def with_masks(feeds: dict, session_inputs, grids: dict[str, int]) -> dict:
    """Add the ``*_mask`` inputs (nothing missing) in the graph's shape: [B, dates] for
    contract v1, [B, dates, tokens] for v2."""
    out = dict(feeds)
    for arg in session_inputs:
        if arg.name.endswith("_mask"):
            m = arg.name[:-5]
            b, d = feeds[m].shape[:2]
            out[arg.name] = np.zeros((b, d) if len(arg.shape) == 2 else (b, d, grids[m] ** 2), bool)
    return out


def bundled_feeds(n_tiles: int, offset: int) -> dict:
    """Tiles of the bundled model's own inputs: S2 5 dates (32 px) + DEM (its tile, constant
    stand-in at 500 m since only the speed is measured)."""
    from engine.contract import read_model_metadata

    meta = read_model_metadata(BUNDLED)
    s2 = meta.modality("s2")
    feeds = slovenia_s2(s2.max_dates, s2.tile_px, n_tiles, offset)
    for m in meta.modalities:
        if m.name == "s2":
            continue
        feeds[m.name] = np.zeros((n_tiles, 1, len(m.bands), m.tile_px, m.tile_px), np.float32)
        feeds[f"{m.name}_dates"] = feeds["ref_date"][:, None, :].copy()
    return feeds


# ----------------------------------------------------------------------------- models
def export_size(size: str, dates: int) -> str:
    """MAESTRO-``size`` for S2 at 10 m, ``dates`` dates, random weights (cached)."""
    path = os.path.join(CACHE, f"throughput-maestro-{size}-s2-{dates}d.onnx")
    if os.path.exists(path):
        return path
    import torch

    from bench.gpu_bench import metadata
    from training.export import config_from_metadata, export_onnx
    from training.models import Maestro

    meta = metadata(dates, f"throughput-maestro-{size}-s2-{dates}d")
    torch.manual_seed(0)
    os.makedirs(CACHE, exist_ok=True)
    export_onnx(Maestro(config_from_metadata(meta, size=size)).eval(), meta, path + ".part.onnx")
    os.replace(path + ".part.onnx", path)
    return path


def measure(name: str, path: str, feeds_fn, tile_px: int, batch: int, threads: int,
            rounds: int, peaks: dict, min_agreement: float, log) -> dict:
    """float32 vs int8 on the same in-memory tiles; returns the figures of one model."""
    import onnxruntime as ort

    from engine.contract import read_model_metadata
    from engine.quantize import QuantizeOptions, quantize_feeds, read_quantisation
    from engine.session import create_session

    meta = read_model_metadata(path)
    inputs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()
    grids = {m.name: m.tile_px // m.patch_px for m in meta.modalities}
    timed = with_masks(feeds_fn(batch, 0), inputs, grids)
    calib = [with_masks(feeds_fn(max(1, batch // 2), 100 + i), inputs, grids) for i in range(2)]
    check = [with_masks(feeds_fn(max(2, batch // 2), 200), inputs, grids)]
    flops_tile = onnx_matmul_flops(path, timed) / batch
    # the variant is kept with its source model (made once: the conversion is set-up, not
    # the measurement; its record says which method won and its agreement)
    int8_path = os.path.join(CACHE, "int8", f"{name}.int8.onnx")
    convert_s = None
    if not os.path.exists(int8_path) or os.path.getmtime(int8_path) < os.path.getmtime(path):
        os.makedirs(os.path.dirname(int8_path), exist_ok=True)
        t0 = time.perf_counter()
        quantize_feeds(path, calib, check, int8_path,
                       QuantizeOptions(method="auto", min_agreement_pct=min_agreement,
                                       threads=threads), log=log)
        convert_s = time.perf_counter() - t0
    record = read_quantisation(int8_path)
    # the engine's scheme (engine.runner): min(threads, 4) batches in flight, each on
    # threads // in flight intra-op threads; 2 x in flight batches per timing
    in_flight, per_run = split_threads(threads)
    sessions = {"float32": create_session(path, "cpu", per_run)[0],
                "int8": create_session(int8_path, "cpu", per_run)[0]}
    out = meta.output_name
    batches = [timed] * (2 * in_flight)
    for s in sessions.values():
        s.run([out], timed)
    best = {k: float("inf") for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            best[k] = min(best[k], run_batches(s, batches, out, in_flight) / len(batches))
    tiles_km2 = (1000.0 / (tile_px * GSD_M)) ** 2
    fig = {"model": name, "tile_px": tile_px, "batches_in_flight": in_flight, "dates": int(timed["s2"].shape[1]),
           "gflop_per_tile": flops_tile / 1e9, "gflop_per_km2": flops_tile * tiles_km2 / 1e9,
           "int8_method": record["method"], "int8_agreement_pct": record["agreement"]["value"],
           "int8_metric": record["agreement"]["metric"], "int8_convert_s": convert_s,
           "int8_speed_at_conversion": record.get("speed_vs_float32_at_conversion")}
    for k in sessions:
        tiles_s = batch / best[k]
        km2_min = tiles_s / tiles_km2 * 60
        peak = peaks[k]
        limit = peak / (flops_tile * tiles_km2) * 60
        fig[k] = {"tiles_s": tiles_s, "km2_min": km2_min, "limit_km2_min": limit,
                  "of_limit": km2_min / limit, "hours_100km": AREA_KM2 / km2_min / 60,
                  "gops": flops_tile * tiles_s / 1e9}
    fig["int8_over_float32"] = fig["int8"]["tiles_s"] / fig["float32"]["tiles_s"]
    return fig


def bundled_quality(threads: int, log) -> dict:
    """The bundled model's int8 variant made by the engine's own path
    (:func:`engine.quantize.quantize_model`, method auto, default 99 % threshold) on the bundled
    sample, then both models run by the engine over the whole sample: pixels with the same
    class, and held-out OA / mIoU of each (training.recipes.default_model's scoring: columns
    68-99, the model card's figures). Calibration and check tiles come from the whole sample,
    held-out imagery included (no labels), as the pretraining saw it."""
    import shutil

    import rasterio

    from engine.api import RunOptions, run_model
    from engine.quantize import QuantizeOptions, quantize_model
    from training.recipes.default_model import engine_heldout_metrics
    from training.recipes.slovenia import load_sample

    folder = tempfile.mkdtemp(prefix="maestro-int8-quality-")
    inputs = {"s2": sorted(glob.glob(os.path.join(ROOT, "resources", "sample", "S2_L1C_*.tif"))),
              "dem": [os.path.join(ROOT, "resources", "sample", "dem.tif")]}
    int8 = os.path.join(folder, "bundled.int8.onnx")
    try:
        rep = quantize_model(BUNDLED, inputs, int8, QuantizeOptions(threads=threads), log=log)
        maps = {}
        for name, path in (("float32", BUNDLED), ("int8", int8)):
            out = os.path.join(folder, f"{name}.tif")
            run_model(path, inputs, out, RunOptions(threads=threads, cog=False))
            with rasterio.open(out) as src:
                maps[name] = src.read(1)
        valid = maps["float32"] != 255
        target = load_sample().target
        scores = {name: engine_heldout_metrics(path, target, os.path.join(folder, name))
                  for name, path in (("float32", BUNDLED), ("int8", int8))}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"method": rep.method, "check_agreement_pct": rep.agreement_pct,
            "sample_equal_pixels_pct": 100.0 * float((maps["int8"][valid] == maps["float32"][valid]).mean()),
            "heldout": {k: {"oa": 100 * v["overall_accuracy"], "miou": 100 * v["miou"]}
                        for k, v in scores.items()}}


def prepare(args) -> int:
    """Export the models and make the int8 variants of :func:`measure` (cached in
    data-cache/bench), so that a later run only measures."""
    wanted = args.models.split(",")
    todo = []
    if "bundled" in wanted:
        from engine.contract import read_model_metadata

        todo.append(("bundled", BUNDLED, bundled_feeds,
                     read_model_metadata(BUNDLED).reference.tile_px, args.batch, 99.0))
    for size in [m for m in wanted if m != "bundled"]:
        for dates in [int(d) for d in args.dates.split(",")]:
            batch = args.batch if size != "base" else max(2, args.batch // (4 if dates > 5 else 1))
            todo.append((f"{size}-{dates}d", export_size(size, dates),
                         lambda n, off, dates=dates: slovenia_s2(dates, TILE, n, off), TILE,
                         batch, 0.0))
    for name, path, feeds, tile, batch, threshold in todo:
        fig = measure(name, path, feeds, tile, batch, args.threads, 1, {"float32": 1.0, "int8": 1.0},
                      threshold, lambda m: print("   ", m, flush=True))
        print(f"{name}: int8 {fig['int8_method']}, agreement {fig['int8_agreement_pct']:.2f}, "
              f"made in {fig['int8_convert_s'] or 0:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--models", default="bundled,tiny,base")
    parser.add_argument("--dates", default="5,20", help="S2 dates of the tiny/base stacks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--prepare", action="store_true",
                        help="only export the models and make their int8 variants (cached)")
    args = parser.parse_args(argv)
    log = (lambda m: None) if args.quiet else (lambda m: print("   ", m, flush=True))
    load_before = os.getloadavg()[0]
    if args.prepare:
        return prepare(args)
    rates = ort_rates(args.threads)
    rates["float32"].update({f"{k} 4096^3": v for k, v in matmul_peak(args.threads).items()})
    peaks = {p: max(r.values()) for p, r in rates.items()}
    print(f"threads {args.threads}, load {load_before:.2f}; best float32 matmul "
          f"{peaks['float32'] / 1e9:.1f} GFLOP/s, best int8 (MatMulInteger u8s8) "
          f"{peaks['int8'] / 1e9:.1f} GOP/s = {peaks['int8'] / peaks['float32']:.2f}x", flush=True)
    for p, r in rates.items():
        print(f"  {p}: " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in r.items()), flush=True)
    results = []
    wanted = args.models.split(",")
    if "bundled" in wanted:
        from engine.contract import read_model_metadata

        t = read_model_metadata(BUNDLED).reference.tile_px
        results.append(measure("bundled", BUNDLED, bundled_feeds, t, args.batch, args.threads,
                               args.rounds, peaks, 99.0, log))
        _print(results[-1])
        q = bundled_quality(args.threads, log)
        results[-1]["quality"] = q
        h = q["heldout"]
        print(f"  bundled int8 ({q['method']}) on the whole sample: {q['sample_equal_pixels_pct']:.2f} % "
              f"of pixels equal to float32 (target >= 99); held-out OA {h['float32']['oa']:.1f} -> "
              f"{h['int8']['oa']:.1f}, mIoU {h['float32']['miou']:.1f} -> {h['int8']['miou']:.1f} "
              f"(target: within 0.5 point)", flush=True)
    for size in [m for m in wanted if m != "bundled"]:
        for dates in [int(d) for d in args.dates.split(",")]:
            path = export_size(size, dates)
            batch = args.batch if size != "base" else max(2, args.batch // (4 if dates > 5 else 1))

            def feeds(n, off, dates=dates):
                return slovenia_s2(dates, TILE, n, off)
            results.append(measure(f"{size}-{dates}d", path, feeds, TILE, batch, args.threads,
                                   args.rounds, peaks, 0.0, log))
            _print(results[-1])
    summary = {"threads": args.threads, "gflops_matmul_float32": peaks["float32"] / 1e9,
               "gops_matmul_int8": peaks["int8"] / 1e9,
               "matmul_rates_g": {p: {k: v / 1e9 for k, v in r.items()} for p, r in rates.items()},
               "models": results,
               "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(summary, default=lambda v: round(v, 4) if isinstance(v, float) else v))
    return 0


def _print(f: dict) -> None:
    print(f"{f['model']}: {f['gflop_per_tile']:.2f} GFLOP per tile of {f['tile_px']} px, "
          f"{f['gflop_per_km2']:.0f} GFLOP per km2 (no overlap)", flush=True)
    for k in ("float32", "int8"):
        g = f[k]
        print(f"  {k:7s} {g['tiles_s']:7.1f} tiles/s  {g['km2_min']:8.2f} km2/min  limit "
              f"{g['limit_km2_min']:8.2f} km2/min ({100 * g['of_limit']:.0f} % of it)  "
              f"100 km x 100 km: {g['hours_100km']:.1f} h", flush=True)
    print(f"  int8 / float32 tiles/s: {f['int8_over_float32']:.2f}x  (int8 {f['int8_method']}, "
          f"agreement {f['int8_agreement_pct']:.2f} {f['int8_metric']})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
