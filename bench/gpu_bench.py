"""GPU benchmark of the engine's CUDA path (run by bench/gpu.sh on a machine with an NVIDIA GPU).

Two steps, so that the GPU step needs only onnxruntime-gpu, numpy and onnx:

    python -m bench.gpu_bench prepare --out DIR [--size base] [--dates 5] [--batch 32]
        (project venv, torch CPU) exports a MAESTRO model of the official ``size`` preset with
        random weights (Sentinel-2 only, 10 bands at 10 m, tiles of 16 px with 2 px patches as
        MAESTRO's PASTIS-HD setting, ``dates`` dates), one batch of inputs, and its FLOPs
        counted by torch (bench.engine_bench.model_flops, attention included).
    python -m bench.gpu_bench measure --dir DIR [--rounds 5] [--cpu-smoke]
        (throwaway venv with onnxruntime-gpu) runs the model with the CUDA execution provider in
        float32 and float16 (engine.session.float16_model) with I/O binding (inputs and
        outputs stay on the device), measures onnxruntime's own MatMul peak on the same
        device in each precision (8192 x 8192), the device memory for two batch sizes
        against engine.session.estimate_device_bytes, and checks the CPU fallback (the same
        engine call with the GPU hidden gives the CPU provider and the same classes).

Printed figures (issue 14 item 5): model FLOP/s / matmul peak of the same precision
(target >= 0.3 in float32), float16 / float32 speed (target >= 2x), tiles/s and km2/min.
``--cpu-smoke`` runs the same code on the CPU provider (a check of the script, not a figure).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TILE, PATCH, GSD_M = 16, 2, 10.0
S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


# ----------------------------------------------------------------------------- prepare
def metadata(dates: int, name: str):
    from engine.contract import build_metadata

    return build_metadata(
        name=name, task="segmentation", reference_modality="s2",
        modalities=[{"name": "s2", "bands": S2_BANDS, "gsd_m": GSD_M, "tile_px": TILE,
                     "patch_px": PATCH, "min_dates": 1, "max_dates": dates,
                     "scaling": {"transform": "none", "mean": [0.0] * 10, "std": [5000.0] * 10},
                     "nodata": {"fill_value": 0.0}}],
        classes=[{"id": i, "name": f"class {i}", "color": "#%02x%02x%02x" % (40 * i, 90, 160)}
                 for i in range(6)],
        provenance={"training_data": "none (random weights, benchmark only)", "licence": "MIT",
                    "metrics": {}})


def batch_feeds(session_inputs, batch: int, dates: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of plausible scaled S2 inputs for the graph's inputs (v1 or v2 masks)."""
    rng = np.random.default_rng(seed)
    feeds = {"s2": rng.uniform(0.0, 0.8, (batch, dates, 10, TILE, TILE)).astype(np.float32),
             "s2_dates": np.repeat(np.array([[2020, 60 + 30 * d, 0] for d in range(dates)],
                                            np.int32)[None], batch, 0),
             "ref_date": np.repeat(np.array([[2020, 60, 0]], np.int32), batch, 0)}
    for arg in session_inputs:
        if arg.name == "s2_mask":
            shape = (batch, dates) if len(arg.shape) == 2 else (batch, dates, (TILE // PATCH) ** 2)
            feeds["s2_mask"] = np.zeros(shape, bool)
    return feeds


def prepare(out: str, size: str, dates: int, batch: int) -> dict:
    import onnxruntime as ort
    import torch

    from bench.engine_bench import model_flops
    from training.export import config_from_metadata, export_onnx
    from training.models import Maestro

    os.makedirs(out, exist_ok=True)
    meta = metadata(dates, f"gpu-bench-maestro-{size}-s2-{dates}d")
    torch.manual_seed(0)
    model = Maestro(config_from_metadata(meta, size=size)).eval()
    path = os.path.join(out, "model.onnx")
    export_onnx(model, meta, path)
    inputs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()
    feeds = batch_feeds(inputs, batch, dates)
    np.savez(os.path.join(out, "feeds.npz"), **feeds)
    info = {"size": size, "dates": dates, "batch": batch, "tile_px": TILE, "patch_px": PATCH,
            "gsd_m": GSD_M, "flops_per_batch": model_flops(model, feeds),
            "parameters": sum(p.numel() for p in model.parameters()),
            "embed_dim": model.config.embed_dim}
    with open(os.path.join(out, "info.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    print(json.dumps(info))
    return info


# ----------------------------------------------------------------------------- measure
def _bound_run(session, feeds: dict, device: str, rounds: int, repeats: int) -> tuple[float, np.ndarray]:
    """Best seconds of ``repeats`` runs with I/O binding (inputs copied to the device once)."""
    import onnxruntime as ort

    binding = session.io_binding()
    values = {k: ort.OrtValue.ortvalue_from_numpy(v, device, 0) for k, v in feeds.items()}
    for k, v in values.items():
        binding.bind_ortvalue_input(k, v)
    binding.bind_output("logits", device)
    session.run_with_iobinding(binding)                     # warm-up (cuDNN, arena)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            session.run_with_iobinding(binding)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best, binding.copy_outputs_to_cpu()[0]


def matmul_peak(provider: str, device: str, dtype, n: int, rounds: int) -> float:
    """onnxruntime MatMul rate (FLOP/s) for n x n x n in ``dtype``, inputs on the device."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    etype = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "mm",
                              [helper.make_tensor_value_info("A", etype, [n, n]),
                               helper.make_tensor_value_info("B", etype, [n, n])],
                              [helper.make_tensor_value_info("C", etype, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=[provider])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("A", ort.OrtValue.ortvalue_from_numpy(a, device, 0))
    binding.bind_ortvalue_input("B", ort.OrtValue.ortvalue_from_numpy(a, device, 0))
    binding.bind_output("C", device)
    sess.run_with_iobinding(binding)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(5):
            sess.run_with_iobinding(binding)
        best = min(best, (time.perf_counter() - start) / 5)
    return 2.0 * n ** 3 / best


def device_memory_child(path: str, feeds_path: str, batch: int, float16: bool) -> None:
    """(child process) run one batch of ``batch`` tiles on CUDA, print the device memory this
    process holds (nvidia-smi) as JSON."""
    from engine.session import create_session

    feeds = dict(np.load(feeds_path))
    reps = -(-batch // next(iter(feeds.values())).shape[0])
    feeds = {k: np.concatenate([v] * reps)[:batch] for k, v in feeds.items()}
    sess, used = create_session(path, "cuda", float16=float16)
    sess.run(["logits"], feeds)
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True)
    mib = sum(float(line.split(",")[1]) for line in out.stdout.strip().splitlines()
              if line.split(",")[0].strip() == str(os.getpid()))
    print(json.dumps({"batch": batch, "float16": float16, "device_mib": mib, "provider": used}))


def cpu_fallback_child(path: str, feeds_path: str) -> None:
    """(child process, GPU hidden) the engine's session with device=auto: provider and logits."""
    from engine.session import create_session

    feeds = {k: v[:2] for k, v in np.load(feeds_path).items()}
    sess, used = create_session(path, "auto")
    np.save(feeds_path + ".cpu_logits.npy", sess.run(["logits"], feeds)[0])
    print(json.dumps({"provider": used}))


def _child(args: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_bench", *args], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})),
                          capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(folder: str, rounds: int, cpu_smoke: bool, matmul_n: int) -> dict:
    import onnxruntime as ort

    from engine.contract import read_model_metadata
    from engine.session import create_session, estimate_device_bytes

    if hasattr(ort, "preload_dlls") and not cpu_smoke:
        ort.preload_dlls()          # CUDA/cuDNN from the nvidia-* wheels of onnxruntime-gpu[cuda,cudnn]
    with open(os.path.join(folder, "info.json"), encoding="utf-8") as fh:
        info = json.load(fh)
    path = os.path.join(folder, "model.onnx")
    feeds_path = os.path.join(folder, "feeds.npz")
    feeds = dict(np.load(feeds_path))
    batch = info["batch"]
    available = ort.get_available_providers()
    if cpu_smoke:
        provider, device, dev = "CPUExecutionProvider", "cpu", "cpu"
    else:
        if "CUDAExecutionProvider" not in available:
            raise SystemExit(f"no CUDAExecutionProvider in this onnxruntime ({ort.__version__}: "
                             f"{available}); install onnxruntime-gpu (bench/gpu.sh does)")
        provider, device, dev = "CUDAExecutionProvider", "cuda", "cuda"
    print(f"onnxruntime {ort.__version__}, providers {available}; model MAESTRO-{info['size']} "
          f"({info['parameters'] / 1e6:.1f} M parameters), S2 {info['dates']} dates, tile "
          f"{TILE} px / patch {PATCH} px, batch {batch}", flush=True)
    if cpu_smoke:
        print("--cpu-smoke: CPU provider, where the engine keeps float32 (the 'float16' row runs "
              "float32 again): a check of this script, not a measurement", flush=True)
    results: dict = {"onnxruntime": ort.__version__, "provider": provider, **info}
    outputs = {}
    for name, half in (("float32", False), ("float16", True)):
        sess, used = create_session(path, device, float16=half)
        seconds, out = _bound_run(sess, feeds, dev, rounds, repeats=3 if cpu_smoke else 10)
        outputs[name] = out
        peak = matmul_peak(provider, dev, np.float16 if half else np.float32, matmul_n, rounds)
        rate = info["flops_per_batch"] / seconds
        tiles_s = batch / seconds
        km2_min = tiles_s * (TILE * GSD_M / 1000.0) ** 2 * 60
        results[name] = {"seconds_per_batch": seconds, "model_tflops": rate / 1e12,
                         "matmul_peak_tflops": peak / 1e12, "model_over_peak": rate / peak,
                         "tiles_s": tiles_s, "km2_min_no_overlap": km2_min, "provider": used}
        print(f"[{name}] {seconds * 1e3:.1f} ms per batch of {batch}: {tiles_s:.0f} tiles/s, "
              f"{km2_min:.0f} km2/min (no overlap); model {rate / 1e12:.2f} TFLOP/s / MatMul "
              f"peak {peak / 1e12:.2f} TFLOP/s ({matmul_n}^3, same device and precision) = "
              f"{rate / peak:.2f}" + ("  (target >= 0.3)" if not half else ""), flush=True)
    speed = results["float32"]["seconds_per_batch"] / results["float16"]["seconds_per_batch"]
    agree = float((outputs["float16"].argmax(1) == outputs["float32"].argmax(1)).mean())
    results["float16_over_float32_speed"] = speed
    results["float16_float32_equal_argmax"] = agree
    print(f"float16 / float32 speed: {speed:.2f}x  (target >= 2x); float16 argmax equal to "
          f"float32 on {100 * agree:.2f} % of the pixels", flush=True)
    if not cpu_smoke:
        meta = read_model_metadata(path)
        mem = []
        for b in (batch, 4 * batch):
            got = _child(["--memory-child", path, feeds_path, str(b)])
            est = estimate_device_bytes(meta, os.path.getsize(path), b,
                                        dim=info.get("embed_dim"))["total"] / 2 ** 20
            mem.append({**got, "estimate_mib": est})
            print(f"device memory, batch {b}: {got.get('device_mib')} MiB measured (whole "
                  f"process, CUDA context included), {est:.0f} MiB estimated", flush=True)
        results["device_memory"] = mem
    fallback = _child(["--cpu-fallback-child", path, feeds_path],
                      env={"CUDA_VISIBLE_DEVICES": ""})
    cpu_logits = np.load(feeds_path + ".cpu_logits.npy") if "error" not in fallback else None
    same = (float((cpu_logits.argmax(1) == outputs["float32"][:2].argmax(1)).mean())
            if cpu_logits is not None else None)
    results["cpu_fallback"] = {**fallback, "equal_argmax_vs_float32": same}
    ok = fallback.get("provider") == "CPUExecutionProvider" and same is not None and same >= 0.99
    print(f"CPU fallback with the GPU hidden: provider {fallback.get('provider')}, argmax equal "
          f"to the device's float32 on {same if same is None else f'{100 * same:.2f} %'}: "
          f"{'ok' if ok else 'FAILED'}", flush=True)
    print(json.dumps(results))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--memory-child":
        device_memory_child(argv[1], argv[2], int(argv[3]), False)
        return 0
    if argv and argv[0] == "--cpu-fallback-child":
        cpu_fallback_child(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="base", help="official preset: tiny, small, base, large")
    p.add_argument("--dates", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    m = sub.add_parser("measure")
    m.add_argument("--dir", required=True)
    m.add_argument("--rounds", type=int, default=5)
    m.add_argument("--matmul-n", type=int, default=8192)
    m.add_argument("--cpu-smoke", action="store_true",
                   help="run on the CPU provider: checks the script, measures nothing useful")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.out, args.size, args.dates, args.batch)
        return 0
    res = measure(args.dir, args.rounds, args.cpu_smoke, args.matmul_n)
    return 0 if res["cpu_fallback"].get("provider") == "CPUExecutionProvider" else 1


if __name__ == "__main__":
    sys.exit(main())
