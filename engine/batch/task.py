"""What one Dask task does on a worker: one engine call over one block's bounds.

The function is a plain module-level function (pickled by reference), its arguments plain
Python values, so that any Dask worker with this package importable can run it.
"""
from __future__ import annotations

import datetime
import os
import socket
import time
from typing import Any, Sequence

from .manifest import sha256_file

#: Modality name -> list of (raster path, ISO date or None) for one job.
InputsSpec = dict[str, list[tuple[str, str | None]]]


def _four(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    xmin, ymin, xmax, ymax = bounds
    return xmin, ymin, xmax, ymax


def run_block(model_path: str, inputs: InputsSpec, block_id: str,
              bounds: tuple[float, float, float, float], output_path: str,
              options: dict[str, Any]) -> dict[str, Any]:
    """Run the engine over ``bounds`` into ``output_path`` (a COG) and return its record:
    ``{block, file, sha256, seconds, tiles, provider, dates, worker}``.

    The engine writes through a temporary name renamed on success, so a task killed midway
    leaves no complete-looking block file. Errors propagate (Dask retries the task).
    """
    from engine.api import RunOptions, SliceInput, run_model

    t0 = time.perf_counter()
    slices = {m: [SliceInput(p, datetime.date.fromisoformat(d) if d else None) for p, d in items]
              for m, items in inputs.items()}
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    report = run_model(model_path, slices, output_path, RunOptions(bounds=_four(bounds), **options))
    return {"block": block_id, "file": output_path, "sha256": sha256_file(output_path),
            "seconds": round(time.perf_counter() - t0, 3), "tiles": report.tiles,
            "provider": report.provider, "dates": report.dates, "worker": f"{socket.gethostname()}:{os.getpid()}"}
