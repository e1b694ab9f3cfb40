"""Large-area batch inference on Dask distributed (``python -m engine batch``).

``run_batch`` splits an area into blocks on the reference grid, runs one ``engine.api.run_model``
call per block as a Dask task (LocalCluster by default, or an existing scheduler), records
finished blocks with their sha256 in ``manifest.json`` (resumable) and writes a VRT (and
optionally one merged COG) over them. dask/distributed are imported only when a job runs.
"""
from .runner import (BatchArea, BatchOptions, BatchReport, BlocksFailedError, plan_blocks,
                     run_batch)

__all__ = ["BatchArea", "BatchOptions", "BatchReport", "BlocksFailedError", "plan_blocks",
           "run_batch"]
