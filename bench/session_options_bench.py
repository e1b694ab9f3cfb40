"""onnxruntime session options on the engine benchmark model, measured side by side.

    bash scripts/with-env.sh .venv/bin/python -m bench.session_options_bench [--threads 2] [--rounds 5]

Times onnxruntime's default spin-waiting intra-op threads against the engine's setting
(``session.intra_op.allow_spinning = 0``, engine/session.py) on the MAESTRO-tiny benchmark
model of bench/engine_bench.py and its 4 Slovenia batches of 8 tiles. The two sessions
alternate, round after round, and each keeps its best time, so that load from other
processes hits both alike; the ratio is what to read (docs/performance.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from bench.engine_bench import build_model, slovenia_batches


def make_session(path: str, threads: int, spinning: bool):
    """An onnxruntime CPU session like engine.session.create_session's, spinning or not."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def streams(path: str, meta, threads: int, rounds: int) -> dict:
    """Best seconds of 8 batches: one ``threads``-thread session vs ``threads`` concurrent
    runs on a one-thread session."""
    from concurrent.futures import ThreadPoolExecutor

    batches = slovenia_batches(8)
    pooled, single = make_session(path, threads, False), make_session(path, 1, False)
    name = meta.output_name
    executor = ThreadPoolExecutor(max_workers=threads)
    ways = {"one_session_threads": lambda: [pooled.run([name], f) for f in batches],
            "concurrent_single_thread_runs": lambda: list(
                executor.map(lambda f: single.run([name], f), batches))}
    best = {k: float("inf") for k in ways}
    for fn in ways.values():
        fn()
    for _ in range(rounds):
        for key, fn in ways.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    executor.shutdown()
    return {"threads": threads, "batches": len(batches),
            "seconds": {k: round(v, 3) for k, v in best.items()},
            "one_session_over_concurrent": round(best["one_session_threads"]
                                                 / best["concurrent_single_thread_runs"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", action="store_true",
                        help="pooled threads vs concurrent one-thread runs (see above)")
    args = parser.parse_args(argv)
    _, path, meta = build_model()
    if args.streams:
        load_before = os.getloadavg()[0]
        summary = streams(path, meta, args.threads, args.rounds)
        summary["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(json.dumps(summary))
        return 0
    batches = slovenia_batches()
    sessions = {"spinning": make_session(path, args.threads, True),
                "blocking": make_session(path, args.threads, False)}
    outputs = {k: s.run([meta.output_name], batches[0])[0] for k, s in sessions.items()}
    max_diff = float(np.abs(outputs["spinning"] - outputs["blocking"]).max())
    best = {k: float("inf") for k in sessions}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            for feeds in batches:
                session.run([meta.output_name], feeds)
            best[name] = min(best[name], time.perf_counter() - start)
    summary = {"threads": args.threads, "tiles": sum(len(b["s2"]) for b in batches),
               "seconds": {k: round(v, 3) for k, v in best.items()},
               "spinning_over_blocking": round(best["spinning"] / best["blocking"], 3),
               "max_output_difference": max_diff,
               "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
