"""Run the engine over a large area as Dask tasks, one block per task, resumably.

Driver side (this module): plan the blocks on the reference grid, open the manifest, skip the
blocks already finished (file present with the recorded sha256), submit the rest to a Dask
``distributed`` cluster (a ``LocalCluster`` of worker processes by default, or an existing
scheduler), record each result in the manifest as it arrives, then write the mosaic.
Worker side: ``engine.batch.task.run_block``.

Failure handling is Dask's: a task that raises is retried ``retries`` times; a task whose
worker dies is rescheduled on another worker (up to ``allowed-failures`` times, set to the
same number for the clusters this module starts). Finished blocks are on disk and in the
manifest, so nothing finished is lost by a worker crash or by killing the driver.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from engine.contract import ModelMetadata
from engine.errors import CancelledError, InputError, MaestroError, OutputError
from engine.paths import check_folder_output
from engine.types import RunOptions

from .blocks import (Block, Bounds, ReferenceGrid, area_from_raster, area_from_vector,
                     explicit_blocks, split_area)
from .lock import LOCK_NAME, FolderLock
from .manifest import MANIFEST_NAME, Manifest, file_fingerprint, sha256_file
from .mosaic import build_vrt, merge_cog
from .task import InputsSpec, run_block

BLOCKS_DIR = "blocks"
VRT_NAME = "mosaic.vrt"
COG_NAME = "mosaic.tif"


class BlocksFailedError(MaestroError):
    """Some blocks still failed after their retries; the others are recorded as finished."""


@dataclass
class BatchOptions:
    """How to split and where to run, and how each block is run.

    block_px: block side in reference pixels (rounded up to a multiple of the model's
        ``tile_px``); a 1024 px block at 10 m is 10.24 km.
    workers: worker processes of the local cluster (None = one per core); ignored with
        ``scheduler``.
    scheduler: address of an existing Dask scheduler (``tcp://host:8786``); None = start a
        ``LocalCluster``. Remote workers must see the model, inputs and output folder under
        the same paths (shared file system).
    retries: Dask retries of a failed block task (also the worker-death allowance of the
        local cluster).
    merged_cog: also write ``mosaic.tif``, one COG of the whole area.
    restart: discard an output folder's job with other parameters instead of refusing.
    run: the engine options of every block (``tile_overlap_pct``, ``batch_size``,
        ``device``, ``float16``, ``expect_task``, ``output``); ``batches_in_flight`` stays
        the engine's auto in every task; ``threads`` is per task (None = cores /
        workers locally, onnxruntime's default on a remote cluster); ``bounds`` and ``cog``
        are set per block (each block is a COG of its own bounds); ``confidence_path`` is
        not written by a batch.
    """

    block_px: int = 1024
    workers: int | None = None
    scheduler: str | None = None
    retries: int = 3
    merged_cog: bool = False
    restart: bool = False
    run: RunOptions = field(default_factory=RunOptions)


@dataclass(frozen=True)
class BatchArea:
    """What to compute: at most one of a raster's extent, a vector layer's extent, bounds,
    or explicit block extents; none = the whole reference raster. ``bounds`` and
    ``block_extents`` are in ``crs`` (anything rasterio's CRS accepts), default the reference
    raster's CRS (:func:`plan_blocks`)."""

    raster: str | None = None
    vector: str | None = None
    bounds: Bounds | None = None
    block_extents: Sequence[Bounds] | None = None
    crs: str | None = None


@dataclass
class BatchJob:
    """One :func:`run_batch` call once its inputs are checked: what the driver's steps
    share (``_run_locked``, ``_compute``, ``_collect``)."""

    model_path: str
    meta: ModelMetadata
    spec: InputsSpec
    blocks: list[Block]
    output_dir: str
    options: BatchOptions
    progress: Callable[[int, int, str], None] | None
    log: Callable[[str], None]
    is_cancelled: Callable[[], bool] | None
    block_fn: Callable[..., dict[str, Any]]
    t_start: float
    #: The asked area in the reference CRS (the mosaic is cut to it); None = no cut.
    clip: Bounds | None = None

    def engine_options(self, n_workers: int) -> dict[str, Any]:
        """The ``RunOptions`` fields each block task gets (``run_block``'s ``options``)."""
        run, opts = self.options.run, self.options
        out: dict[str, Any] = {"tile_overlap_pct": run.tile_overlap_pct,
                               "batch_size": run.batch_size, "device": run.device, "cog": True}
        if run.output is not None:
            out["output"] = run.output
        if run.float16 is not None:
            out["float16"] = run.float16
        if run.threads:
            out["threads"] = run.threads
        elif not opts.scheduler:
            out["threads"] = max(1, (os.cpu_count() or 1) // n_workers)
        return out


@dataclass
class BatchReport:
    """What a batch run did. ``throughput_blocks_s`` and ``throughput_px_s`` count only the
    blocks computed in this run, over the time from submission to the last result."""

    output_dir: str
    vrt_path: str | None
    cog_path: str | None
    task: str
    blocks_total: int
    blocks_skipped: int
    blocks_run: int
    redone: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    throughput_blocks_s: float = 0.0
    throughput_px_s: float = 0.0
    provider: str | None = None
    #: Per modality, the dates (ISO) the model saw over all the job's blocks, those of
    #: earlier runs included (recorded per block in the manifest).
    dates: dict[str, list[str]] = field(default_factory=dict)


def _inputs_spec(inputs: Mapping[str, Sequence[Any]]) -> InputsSpec:
    """Normalise ``{modality: [path | SliceInput | (path, date)]}`` to plain
    ``{modality: [(abs path, ISO date | None)]}`` (picklable, JSON-able, order kept)."""
    spec: InputsSpec = {}
    for name, items in inputs.items():
        if isinstance(items, (str, os.PathLike)):
            items = [items]
        out = []
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                path, when = os.fspath(item), None
            elif isinstance(item, tuple):
                path, when = item
            else:  # engine.api.SliceInput
                path, when = item.path, item.date
            if not os.path.exists(path):
                raise InputError(f"Input raster of modality '{name}' not found: {path}")
            if isinstance(when, (datetime.date, datetime.datetime)):
                when = when.isoformat()[:10]
            out.append((os.path.abspath(path), when))
        if not out:
            raise InputError(f"Modality '{name}' has no input raster.")
        spec[name.lower()] = out
    return spec


def _reference_raster(meta, spec: InputsSpec) -> str:
    """The raster whose grid the engine's output is on, by the rule every run applies
    (``engine.preprocessing.geometry.grid_raster``: the model's pixel size, then the largest
    ground area, then the earliest) over the reference modality's slices as the engine's own
    stack rules give them (``engine.stack.collect_stack``): blocks are planned on the grid each
    block's run will use."""
    from engine.api import SliceInput
    from engine.preprocessing.geometry import grid_raster
    from engine.stack import collect_stack

    ref = meta.reference_modality
    if ref not in spec:
        raise InputError(f"The model needs the reference modality '{ref}'; inputs give "
                         f"{', '.join(sorted(spec)) or 'none'}.")
    items = [SliceInput(p, datetime.date.fromisoformat(d) if d else None) for p, d in spec[ref]]
    stack = collect_stack(meta.reference, items, lambda message: None)
    return grid_raster(stack, meta.reference.gsd_m).path


def plan_blocks(meta, grid: ReferenceGrid, block_px: int, area_raster: str | None = None,
                area_vector: str | None = None, area_bounds: Bounds | None = None,
                block_extents: Sequence[Bounds] | None = None,
                area_crs: str | None = None) -> list[Block]:
    """Blocks for one of: a raster's extent, a vector layer's extent, bounds, or explicit
    block extents; none = the whole reference raster. Bounds and block extents are in
    ``area_crs`` (anything rasterio's CRS accepts: ``EPSG:4326``, WKT), default the
    reference raster's CRS."""
    given = [a is not None for a in (area_raster, area_vector, area_bounds, block_extents)]
    if sum(given) > 1:
        raise InputError("Give at most one area: a raster, a vector layer, bounds, or a list of "
                         "block extents.")
    align = meta.reference.tile_px
    if block_extents is not None:
        if area_crs:
            block_extents = [_to_grid_crs(b, area_crs, grid) for b in block_extents]
        return explicit_blocks(grid, block_extents, align)
    block_px = -(-block_px // align) * align
    area = area_in_grid(grid, area_raster, area_vector, area_bounds, area_crs)
    if area is None:
        area = grid.window_bounds((0, 0, grid.width, grid.height))
    return split_area(grid, area, block_px, align)


def area_in_grid(grid: ReferenceGrid, area_raster: str | None = None,
                 area_vector: str | None = None, area_bounds: Bounds | None = None,
                 area_crs: str | None = None) -> Bounds | None:
    """The asked area (a raster's extent, a vector layer's extent, or bounds in ``area_crs``)
    as bounds in the reference CRS; None when none is given (the whole reference raster)."""
    if area_raster is not None:
        return area_from_raster(area_raster, grid)
    if area_vector is not None:
        return area_from_vector(area_vector, grid)
    if area_bounds is not None:
        if area_crs:
            area_bounds = _to_grid_crs(area_bounds, area_crs, grid)
        xmin, ymin, xmax, ymax = area_bounds
        return xmin, ymin, xmax, ymax
    return None


def _to_grid_crs(bounds: Bounds, crs: str, grid: ReferenceGrid) -> Bounds:
    """Bounds in ``crs`` -> the enclosing bounds in the reference CRS."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds

    try:
        src = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"Unknown area CRS {crs!r}: {exc}") from exc
    return tuple(transform_bounds(src, grid.crs_wkt, *bounds, densify_pts=21))


def _job_fingerprint(model_path: str, meta, spec: InputsSpec, blocks: Sequence[Block],
                     opts: BatchOptions) -> dict[str, Any]:
    """The parameters that change a block's pixels: a re-run must match them to resume."""
    return {
        "model": {"path": os.path.abspath(model_path), "sha256": sha256_file(model_path),
                  "name": meta.name, "task": meta.task},
        "inputs": {m: [dict(file_fingerprint(p), date=d) for p, d in items]
                   for m, items in sorted(spec.items())},
        "blocks": {b.id: list(b.window) for b in blocks},
        "engine_options": {"tile_overlap_pct": opts.run.tile_overlap_pct,
                           # float16 changes pixels on CUDA; recorded only when asked, so
                           # that the manifests of earlier jobs still match
                           **({"float16": True} if opts.run.float16 else {})},
    }


@contextlib.contextmanager
def _client(opts: BatchOptions, log: Callable[[str], None]):
    """A ``distributed.Client`` on the given scheduler, or on a LocalCluster of worker
    processes (``threads_per_worker=1``: one engine call per process at a time)."""
    import dask
    from distributed import Client, LocalCluster

    if opts.scheduler:
        try:
            client = Client(opts.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"Cannot reach the Dask scheduler {opts.scheduler}: {exc}") from exc
        try:
            n_workers = len(client.scheduler_info().get("workers", {}))
            log(f"Connected to the Dask scheduler {opts.scheduler} ({n_workers} workers)")
            if not n_workers:
                log("warning: the scheduler has no worker yet; blocks wait until one joins "
                    "(dask worker " + opts.scheduler + ")")
            yield client
        finally:
            client.close()
        return
    n = opts.workers or os.cpu_count() or 1
    threads = opts.run.threads or max(1, (os.cpu_count() or 1) // n)
    with dask.config.set({"distributed.scheduler.allowed-failures": opts.retries,
                          "distributed.worker.daemon": False}):
        # Each worker's numerical libraries get the same thread budget as onnxruntime.
        env = {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")}
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", env=env,
                               silence_logs=logging.ERROR)
        try:
            client = Client(cluster)
            try:
                log(f"Started a local Dask cluster: {n} worker processes x 1 task, "
                    f"{threads} onnxruntime thread(s) each")
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def run_batch(model_path: str, inputs: Mapping[str, Sequence[Any]], output_dir: str,
              options: BatchOptions | None = None, *, area: BatchArea | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              log: Callable[[str], None] | None = None,
              is_cancelled: Callable[[], bool] | None = None,
              block_fn: Callable[..., dict[str, Any]] = run_block) -> BatchReport:
    """Run ``model_path`` over the area, one Dask task per block; see the module docstring.

    Args:
        inputs: ``{modality: [path | SliceInput | (path, date)]}`` as for ``run_model``
            (files or VRT mosaics, one per date).
        output_dir: gets ``blocks/<id>.tif`` (one COG per block), ``manifest.json``,
            ``mosaic.vrt`` and, with ``merged_cog``, ``mosaic.tif``.
        options: see :class:`BatchOptions` (``options.run``: the engine options).
        area: see :class:`BatchArea`; None = the whole reference raster.
        progress: ``progress(blocks_done, blocks_total, message)`` after each block.
        is_cancelled: polled while waiting; cancelling stops submitting, keeps what finished
            and raises ``CancelledError`` (a re-run resumes).
        block_fn: the task function (signature of ``task.run_block``), e.g. a wrapper.

    Raises:
        InputError / JobMismatchError for unusable inputs or another job in ``output_dir``;
        BlocksFailedError when blocks failed after their retries (no mosaic is written then);
        CancelledError.
    """
    from engine.contract import read_model_metadata

    opts = options or BatchOptions()
    area = area or BatchArea()
    log = log or (lambda message: None)
    t_start = time.perf_counter()
    meta = read_model_metadata(model_path)
    expect_task = opts.run.expect_task
    if expect_task and meta.task != expect_task:
        raise InputError(f"The model {os.path.basename(model_path)} is a {meta.task} model; "
                         f"this tool needs a {expect_task} model.")
    spec = _inputs_spec(inputs)
    check_folder_output(output_dir, "output folder",
                        [("model file", model_path)] + [(f"{m} input", p) for m, items in spec.items()
                                                   for p, _ in items],
                        names=(MANIFEST_NAME, VRT_NAME, COG_NAME, LOCK_NAME),
                        subfolders=(BLOCKS_DIR,))
    missing = [m for m in meta.modality_names if m not in spec]
    if missing:
        raise InputError(f"The model needs the modalities {', '.join(missing)}; "
                         f"inputs give {', '.join(sorted(spec))}.")
    grid = ReferenceGrid.from_raster(_reference_raster(meta, spec))
    blocks = plan_blocks(meta, grid, opts.block_px, area.raster, area.vector, area.bounds,
                         area.block_extents, area.crs)
    # Blocks start and end on the model's tile grid; the mosaic is cut to the asked area.
    clip = None if area.block_extents is not None else area_in_grid(
        grid, area.raster, area.vector, area.bounds, area.crs)
    try:
        os.makedirs(os.path.join(output_dir, BLOCKS_DIR), exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {output_dir}: {exc}") from exc
    with FolderLock(output_dir, log):
        _remove_leftovers(output_dir, log)
        return _run_locked(BatchJob(model_path, meta, spec, blocks, output_dir, opts, progress,
                                    log, is_cancelled, block_fn, t_start, clip))


def _remove_leftovers(output_dir: str, log: Callable[[str], None]) -> None:
    """Temporaries of earlier drivers (the lock is held: none of them runs) and of dead
    block tasks (``engine.writer.remove_stale_temporaries`` keeps a live process's)."""
    from engine.writer import remove_stale_temporaries

    removed = []
    for name in os.listdir(output_dir):
        if name in (MANIFEST_NAME + ".tmp",) or name.startswith((VRT_NAME + ".tmp",
                                                                 COG_NAME + ".tmp")):
            path = os.path.join(output_dir, name)
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(path)
    removed += remove_stale_temporaries(os.path.join(output_dir, BLOCKS_DIR))
    if removed:
        log(f"Removed {len(removed)} temporary file(s) left by an interrupted run: "
            + ", ".join(os.path.basename(p) for p in removed[:5])
            + (" ..." if len(removed) > 5 else ""))


def _run_locked(job: BatchJob) -> BatchReport:
    """The rest of :func:`run_batch`, while this driver holds the folder's lock."""
    meta, blocks, output_dir, opts = job.meta, job.blocks, job.output_dir, job.options
    log, progress = job.log, job.progress
    manifest = Manifest.open(output_dir,
                             _job_fingerprint(job.model_path, meta, job.spec, blocks, opts),
                             restart=opts.restart)
    finished = manifest.finished([b.id for b in blocks])
    # Why blocks recorded before are computed again: missing/corrupt output, or failed.
    redone = {i: ("failed" if r.get("status") == "failed" else r["redo_reason"])
              for i, r in manifest.blocks.items()
              if r.get("status") == "failed"
              or (r.get("status") == "pending" and r.get("redo_reason"))}
    for block_id, reason in sorted(redone.items()):
        log(f"Block {block_id}: output {reason}, it will be computed again")
    todo = [b for b in blocks if b.id not in finished]
    for b in todo:
        manifest.record(b.id, status="pending", file=os.path.join(BLOCKS_DIR, f"{b.id}.tif"),
                        bounds=list(b.bounds), window=list(b.window))
    manifest.save()
    total = len(blocks)
    log(f"{total} blocks; {len(finished)} already finished, {len(todo)} to compute")
    report = BatchReport(output_dir=output_dir, vrt_path=None, cog_path=None, task=meta.task,
                         blocks_total=total, blocks_skipped=len(finished), blocks_run=0,
                         redone=redone)
    if progress:
        progress(len(finished), total, f"{len(finished)}/{total} blocks already finished")
    if todo:
        _compute(job, todo, manifest, report)
    if report.failed:
        raise BlocksFailedError(
            f"{len(report.failed)} of {total} blocks failed after {opts.retries} retries "
            f"(first: {next(iter(report.failed.items()))}); the {total - len(report.failed)} "
            f"others are recorded in {manifest.path}. Re-run the same command to retry them.")
    report.dates = _job_dates(manifest, blocks, log)
    files = [os.path.join(output_dir, manifest.blocks[b.id]["file"]) for b in blocks]
    report.vrt_path = build_vrt(os.path.join(output_dir, VRT_NAME), files, job.clip)
    if opts.merged_cog:
        log("Writing the merged COG")
        report.cog_path = merge_cog(report.vrt_path, os.path.join(output_dir, COG_NAME))
    report.seconds = time.perf_counter() - job.t_start
    return report


def _job_dates(manifest: Manifest, blocks: Sequence[Block],
               log: Callable[[str], None]) -> dict[str, list[str]]:
    """Per modality, the dates the model saw over every block of the job (the union of the
    blocks' recorded dates), whether computed in this run or in an earlier one."""
    dates, unknown = manifest.dates([b.id for b in blocks])
    if unknown and len(unknown) == len(blocks):
        log(f"The dates the model saw are not known: the manifest records none for the "
            f"{len(unknown)} blocks (finished by an older version of this runner); "
            "--restart computes them again")
    elif unknown:
        log(f"The dates reported are those of {len(blocks) - len(unknown)} of {len(blocks)} "
            f"blocks: the manifest records none for {len(unknown)} blocks finished by an older "
            "version of this runner")
    return dates


def _compute(job: BatchJob, todo: list[Block], manifest: Manifest, report: BatchReport) -> None:
    """Submit ``todo`` to the cluster and record the results as they complete."""
    with _client(job.options, job.log) as client:
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        report.workers = n_workers
        try:
            _collect(job, client, todo, job.engine_options(n_workers), manifest, report)
        finally:
            # Whatever stops the loop (cancel, Ctrl-C, a lost scheduler): keep what finished.
            manifest.save()


def _collect(job: BatchJob, client, todo: list[Block], engine_opts: dict[str, Any],
             manifest: Manifest, report: BatchReport) -> None:
    """Submit the blocks, then record results as they complete (see ``_compute``)."""
    from distributed import as_completed

    output_dir, opts, total = job.output_dir, job.options, len(job.blocks)
    progress, is_cancelled, log = job.progress, job.is_cancelled, job.log
    t0 = time.perf_counter()
    futures = {}
    for b in todo:
        out = os.path.abspath(os.path.join(output_dir, BLOCKS_DIR, f"{b.id}.tif"))
        fut = client.submit(job.block_fn, job.model_path, job.spec, b.id, b.bounds, out,
                            engine_opts,
                            key=f"maestro-block-{b.id}-{os.urandom(4).hex()}",
                            retries=opts.retries, pure=False)
        futures[fut] = b
    done_px = 0
    pending = as_completed(list(futures))
    while not pending.is_empty():
        if is_cancelled and is_cancelled():
            for fut in futures:
                fut.cancel()
            manifest.save()
            raise CancelledError(
                f"Batch cancelled after {report.blocks_skipped + report.blocks_run} of "
                f"{total} blocks; re-run the same command to resume.")
        batch = pending.next_batch(block=False)
        if not batch:
            # Records throttled by the last save are written once the interval is over, not
            # only when the next result arrives: a driver killed during a quiet spell must not
            # lose finished blocks, and whoever watches the manifest must see them.
            manifest.save(force=False)
            time.sleep(0.1)
            continue
        for fut in batch:
            # Released once recorded: a worker dying later must not make Dask recompute
            # a finished block to restore a result nobody needs any more.
            b = futures.pop(fut)
            if fut.status == "finished":
                res = fut.result()
                manifest.record(b.id, status="done", sha256=res["sha256"],
                                seconds=res["seconds"], worker=res["worker"], error=None,
                                redo_reason=None, dates=res["dates"] or {})
                report.blocks_run += 1
                report.provider = res["provider"]
                done_px += b.pixels
            else:
                exc = fut.exception()
                manifest.record(b.id, status="failed", error=f"{type(exc).__name__}: {exc}")
                report.failed[b.id] = f"{type(exc).__name__}: {exc}"
                log(f"Block {b.id} failed: {type(exc).__name__}: {exc}")
            fut.release()
        manifest.save(force=False)
        elapsed = time.perf_counter() - t0
        report.compute_seconds = elapsed
        report.throughput_blocks_s = report.blocks_run / elapsed if elapsed else 0.0
        report.throughput_px_s = done_px / elapsed if elapsed else 0.0
        finished = report.blocks_skipped + report.blocks_run
        left = len(todo) - report.blocks_run - len(report.failed)
        eta = left / report.throughput_blocks_s if report.throughput_blocks_s else float("nan")
        message = (f"{finished}/{total} blocks done, {report.throughput_blocks_s * 3600:.0f} "
                   f"blocks/h ({report.throughput_px_s / 1e6:.3f} Mpx/s), "
                   f"{len(report.failed)} failed, ETA {eta:.0f} s")
        if progress:
            progress(finished, total, message)
