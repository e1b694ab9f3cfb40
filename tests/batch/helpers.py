"""Task functions the batch tests hand to ``run_batch(block_fn=...)``: they run in the Dask
worker processes, so they live in an importable module (pickled by reference)."""
from __future__ import annotations

import os
import signal

from engine.batch.task import run_block


def run_block_killing_worker_once(marker, model_path, inputs, block_id, bounds, output_path,
                                  options):
    """Like ``run_block``, but the first task to find no ``marker`` file creates it (writing
    its block id and process id) and SIGKILLs its own worker process, as a crashed machine
    would. Use as ``functools.partial(run_block_killing_worker_once, marker)``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return run_block(model_path, inputs, block_id, bounds, output_path, options)
    os.write(fd, f"{block_id} {os.getpid()}".encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the worker was killed")
