"""Task functions the batch tests hand to ``run_batch(block_fn=...)``: they run in the Dask
worker processes, so they live in an importable module (pickled by reference)."""
from __future__ import annotations

import json
import os
import signal
import time

from engine.batch.task import run_block


def _recorded_done(manifest_path: str) -> dict[str, int]:
    """Blocks the driver has recorded as done so far -> their file's mtime_ns."""
    try:
        with open(manifest_path) as f:
            blocks = json.load(f)["blocks"]
    except (OSError, ValueError, KeyError):
        return {}
    folder = os.path.dirname(manifest_path)
    return {i: os.stat(os.path.join(folder, r["file"])).st_mtime_ns
            for i, r in blocks.items() if r.get("status") == "done"}


def run_block_killing_worker_once(marker, min_done, model_path, inputs, block_id, bounds,
                                  output_path, options):
    """Like ``run_block``, but the first task to find no ``marker`` file waits (up to 180 s:
    the other worker computes those blocks alone, slowly on a loaded machine)
    until the driver's manifest records ``min_done`` finished blocks, writes the marker
    (``{"block", "pid", "done": {block: mtime_ns}}``) and SIGKILLs its own worker process, as
    a crashed machine would. Use as ``functools.partial(run_block_killing_worker_once, marker,
    min_done)``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return run_block(model_path, inputs, block_id, bounds, output_path, options)
    manifest = os.path.join(os.path.dirname(os.path.dirname(output_path)), "manifest.json")
    start = time.monotonic()
    while len(_recorded_done(manifest)) < min_done and time.monotonic() < start + 180:
        time.sleep(0.05)
    os.write(fd, json.dumps({"block": block_id, "pid": os.getpid(),
                             "waited_s": round(time.monotonic() - start, 1),
                             "done": _recorded_done(manifest)}).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the worker was killed")


def run_block_failing_for(block_to_fail, model_path, inputs, block_id, bounds, output_path,
                          options):
    """Like ``run_block``, but block ``block_to_fail`` raises every time (a bad input there)."""
    if block_id == block_to_fail:
        raise RuntimeError(f"simulated failure of block {block_id}")
    return run_block(model_path, inputs, block_id, bounds, output_path, options)


def run_block_waiting_for_manifest(block_to_wait, min_done, timeout_s, model_path, inputs,
                                   block_id, bounds, output_path, options):
    """Like ``run_block``, but block ``block_to_wait`` first waits (up to ``timeout_s``) until
    the driver's manifest on disk records ``min_done`` finished blocks, and fails if it never
    does: the manifest must show finished blocks while the driver waits for others."""
    if block_id == block_to_wait:
        manifest = os.path.join(os.path.dirname(os.path.dirname(output_path)), "manifest.json")
        start = time.monotonic()
        while len(_recorded_done(manifest)) < min_done:
            if time.monotonic() > start + timeout_s:
                raise RuntimeError(f"after {timeout_s} s the manifest records only "
                                   f"{len(_recorded_done(manifest))} finished blocks")
            time.sleep(0.05)
    return run_block(model_path, inputs, block_id, bounds, output_path, options)


def run_block_recording_options(folder, model_path, inputs, block_id, bounds, output_path,
                                options):
    """Like ``run_block``, after writing the ``options`` the block task got to
    ``folder/<block_id>.json``. Use as ``functools.partial(run_block_recording_options,
    folder)``."""
    with open(os.path.join(folder, f"{block_id}.json"), "w") as f:
        json.dump(options, f)
    return run_block(model_path, inputs, block_id, bounds, output_path, options)
