"""Orchestration of one run: model, stacks, grids, tiles, onnxruntime, blending, writing.

Nodata rule (what the output marks as nodata)
---------------------------------------------
For each modality ``m`` and each of its date slots, a pixel of ``m``'s model grid is *valid*
when every band has data there (not the raster's nodata, not masked, inside the raster, finite).
A reference pixel is valid for ``m`` when the ``m`` model-grid pixel containing its centre is
valid in **at least one** date of ``m``. A reference pixel is valid when it is valid for
**every** modality of the model (all are required). Then:

- segmentation: invalid reference pixels are written as nodata (255; confidence NaN);
- classification / embedding: an output pixel (tile footprint / token) is nodata when none of
  its reference pixels is valid;
- a tile where some modality has no valid pixel in any date is not run at all (all its
  pixels are invalid).

What the model is fed (:mod:`engine.preprocessing.tokens`, docs/model-contract.md):

- contract version 2: ``m_mask`` bool [batch, dates, tokens], True for a token (patch of one
  date) without any valid pixel, padding outside the raster included; nodata pixels of a
  token with some valid pixels get the token's per-band mean of its valid pixels; the date
  triplets carry hour 0;
- contract version 1: ``m_mask`` bool [batch, dates], True for a date slot whose tile has no
  valid pixel; every nodata pixel gets ``nodata.fill_value`` (zero-filled); the hour of a full
  timestamp is passed as before. One log line says so.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .align import SliceReader, model_grid
from .blend import RowAccumulator
from .contract import REF_DATE_INPUT, ModelMetadata, read_model_metadata
from .errors import CancelledError, InputError
from .pipeline import InFlight, split_threads
from .preprocessing.dates import date_triplet
from .preprocessing.geometry import grid_raster, pixel_size_warning
from .preprocessing.tokens import model_input
from .stack import Slice, collect_stack, display_name, reference_date
from .tiling import TileGrid, offset_quantum
from .tasks import EMBEDDINGS_OUTPUT, TaskSpec, written_task
from .tasks.spec import confidence
from .types import RunReport
from .writer import RasterWriter, check_writable


#: Floor and multiplier of the GDAL block cache set for a run (see bounded_gdal_cache).
CACHE_FLOOR_BYTES = 32 * 2 ** 20
CACHE_ROWS_OF_BLOCKS = 2


_CACHE_LOCK = threading.Lock()
_CACHE_STATE: dict = {"saved": None, "active": []}


def _apply_cache_cap(gdal) -> None:
    active, saved = _CACHE_STATE["active"], _CACHE_STATE["saved"]
    gdal.SetCacheMax(min(saved, sum(active)) if active else saved)


@contextlib.contextmanager
def bounded_gdal_cache(row_bytes: int, log: Callable[[str], None]):
    """Cap GDAL's block cache at about two rows of source blocks for the run.

    GDAL keeps every block read in its cache up to GDAL_CACHEMAX (5% of RAM by default), so
    without a cap the memory of a run grows with the raster's area; blocks of rows already
    done are never read again. The cap is process-wide: runs in several threads at once
    (the batch runner's workers) get the sum of their needs, and the cap found before the
    first run is restored after the last.
    """
    try:
        from osgeo import gdal
    except ImportError:  # rasterio without osgeo: keep GDAL's default
        yield
        return
    cap = max(CACHE_FLOOR_BYTES, CACHE_ROWS_OF_BLOCKS * int(row_bytes))
    with _CACHE_LOCK:
        if not _CACHE_STATE["active"]:
            _CACHE_STATE["saved"] = gdal.GetCacheMax()
        _CACHE_STATE["active"].append(cap)
        _apply_cache_cap(gdal)
    log(f"GDAL block cache capped at {gdal.GetCacheMax() / 2 ** 20:.0f} MiB during the run")
    try:
        yield
    finally:
        with _CACHE_LOCK:
            _CACHE_STATE["active"].remove(cap)
            _apply_cache_cap(gdal)


def _lattice(box, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """x, y [n, n] of the cell centres of an n x n lattice over ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    t = (np.arange(n) + 0.5) / n
    xs, ys = np.meshgrid(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
    return xs, ys


def _in_box(xs: np.ndarray, ys: np.ndarray, box) -> np.ndarray:
    """bool: the points inside ``box`` (x0, y0, x1, y1), edges included."""
    return (xs >= box[0]) & (xs <= box[2]) & (ys >= box[1]) & (ys <= box[3])


@dataclass
class PreparedBatch:
    """Inputs of one batch of tiles.

    Attributes:
        tiles: (row, col) reference-pixel origins of every tile of the batch.
        run: indices (into ``tiles``) of the tiles that go through the model.
        feeds: onnxruntime inputs for the ``run`` tiles (None when no tile runs).
        valid: bool [T, T] per tile of ``run``: valid reference pixels.
        seen: modality -> whether any valid pixel was seen in the batch.
        dates_used: modality -> bool [dates]: the date has a valid pixel in a tile of ``run``
            (a date without any is masked out entirely: the model does not see it).
        date_counts: int [dates + 1] for the reference modality: valid reference pixels of the
            ``run`` tiles by the number of dates with data there.
    """

    tiles: list
    run: list
    feeds: dict | None
    valid: list
    seen: dict
    dates_used: dict | None = None
    date_counts: Any = None


class Runner:
    """One call of :func:`engine.api.run_model` (see its docstring)."""

    def __init__(self, model_path: str, inputs: Mapping[str, Sequence], output_path: str,
                 options, progress: Callable | None = None, is_cancelled: Callable | None = None,
                 log: Callable | None = None):
        self.model_path = os.fspath(model_path)
        self.inputs = inputs
        self.output_path = os.fspath(output_path)
        self.options = options
        self._progress = progress
        self._is_cancelled = is_cancelled
        self._log_fn = log
        self.messages: list[str] = []

    # ------------------------------------------------------------------ callbacks
    def log(self, message: str) -> None:
        self.messages.append(message)
        if self._log_fn:
            self._log_fn(message)

    def progress(self, fraction: float, message: str) -> None:
        if self._progress:
            self._progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel(self) -> None:
        if self._is_cancelled and self._is_cancelled():
            raise CancelledError("run cancelled by the user; no output was written")

    # ------------------------------------------------------------------ set-up
    def _check_options(self, meta: ModelMetadata) -> None:
        opts = self.options
        if opts.expect_task and meta.task != opts.expect_task:
            raise InputError(f"model '{self.model_path}' is a {meta.task} model; this tool needs "
                             f"a {opts.expect_task} model")
        if int(opts.batch_size) < 1:
            raise InputError(f"batch size must be at least 1 (got {opts.batch_size})")

    def _chosen_output(self, meta: ModelMetadata) -> TaskSpec:
        """The registered task whose output the run writes (engine.tasks.written_task): the
        model's own, or with ``options.output == "embeddings"`` the embedding task, whose
        output (the encoder features) every contract-2 model also gives.

        Raises:
            InputError: an unknown output name, or a model without an ``embeddings`` output.
        """
        wanted = getattr(self.options, "output", None) or meta.output_name
        try:
            task = written_task(meta, wanted)
        except KeyError:
            raise InputError(f"output '{wanted}' is not one this engine writes (the task output "
                             f"'{meta.output_name}' or '{EMBEDDINGS_OUTPUT}')") from None
        if task.name == meta.task:
            return task
        from .session import inspect_model

        names = [o.name for o in inspect_model(self.model_path)[2]]
        if wanted not in names or (task.needs_embedding_dim and not meta.embedding_dim):
            raise InputError(
                f"model '{meta.name}' ({self.model_path}) has no '{wanted}' output (outputs: "
                f"{names}; contract version {meta.schema_version}): re-export it with contract "
                "version 2, which gives every model its encoder features")
        return task

    def _collect(self, meta: ModelMetadata) -> dict[str, list[Slice]]:
        given = {str(k).lower(): v for k, v in self.inputs.items()}
        unknown = sorted(set(given) - set(meta.modality_names))
        if unknown:
            raise InputError(f"inputs {unknown} are not modalities of model '{meta.name}' "
                             f"(it takes {list(meta.modality_names)})")
        missing = [m for m in meta.modality_names if not given.get(m)]
        if missing:
            raise InputError(f"model '{meta.name}' needs modality(ies) {missing}, which were not "
                             f"given (given: {sorted(k for k, v in given.items() if v)})")
        return {m.name: collect_stack(m, list(given[m.name]), self.log) for m in meta.modalities}

    def _check_overlap(self, stacks: dict[str, list[Slice]], grid_slice: Slice) -> None:
        """Refuse a raster that misses the reference raster; warn when a modality covers only
        part of it (its footprint, the union of its rasters' bounds, sampled on a 64 x 64
        lattice): the output is nodata wherever a modality has no data."""
        from rasterio.warp import transform_bounds

        grid_box = grid_slice.bounds
        xs, ys = _lattice(grid_box)
        boxes: dict[str, list] = {}
        for name, stack in stacks.items():
            covered = np.zeros(xs.shape, dtype=bool)
            boxes[name] = []
            for sl in stack:
                try:
                    box = transform_bounds(sl.crs, grid_slice.crs, *sl.bounds)
                except Exception as exc:
                    raise InputError(f"input raster '{sl.path}' ({name}) cannot be transformed "
                                     f"to the reference CRS: {exc}") from exc
                x0, y0, x1, y1 = box
                gx0, gy0, gx1, gy1 = grid_box
                if not (x0 < gx1 and x1 > gx0 and y0 < gy1 and y1 > gy0):
                    raise InputError(
                        f"input raster '{sl.path}' ({name}) does not overlap the reference raster "
                        f"'{grid_slice.path}' (bounds {tuple(round(v, 3) for v in box)}"
                        f" vs {tuple(round(v, 3) for v in grid_box)} in the reference CRS)")
                boxes[name].append(box)
                covered |= _in_box(xs, ys, box)
            share = float(covered.mean())
            if share < 0.99:
                self.log(f"warning: {name} covers about {100 * share:.0f} % of the reference "
                         f"raster '{display_name(grid_slice.path)}': the map is nodata where a "
                         "modality has no data")
        if self.options.bounds is None:
            self._check_grid_extent(boxes[self.meta.reference.name], grid_slice)

    def _check_grid_extent(self, boxes: list, grid_slice: Slice) -> None:
        """Warn when the reference modality's rasters (``boxes``: their bounds in the reference
        CRS) together cover more ground than the raster whose grid the map takes (the map stops
        at that raster's edges): the share of their union (a 64 x 64 lattice) inside it."""
        union_box = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                     max(b[2] for b in boxes), max(b[3] for b in boxes))
        xs, ys = _lattice(union_box)
        union = np.zeros(xs.shape, dtype=bool)
        for box in boxes:
            union |= _in_box(xs, ys, box)
        inside = union & _in_box(xs, ys, grid_slice.bounds)
        share = float(inside.sum()) / max(int(union.sum()), 1)
        if share < 0.99:
            self.log(f"warning: the map covers the extent of '{display_name(grid_slice.path)}' "
                     f"(its grid is the output grid), about {100 * share:.0f} % of the area the "
                     f"{len(boxes)} {self.meta.reference.name} rasters cover together: mosaic "
                     "the scenes of one date (gdalbuildvrt) or give every date the same extent "
                     "to map the rest")

    def _output_window(self, grid_slice: Slice, factor: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Half-open (rows, cols) of the output grid to compute, in output pixels."""
        out_h, out_w = math.ceil(grid_slice.height / factor), math.ceil(grid_slice.width / factor)
        if self.options.bounds is None:
            return (0, out_h), (0, out_w)
        from rasterio.windows import from_bounds

        xmin, ymin, xmax, ymax = self.options.bounds
        bounds_crs = getattr(self.options, "bounds_crs", None)
        if bounds_crs:
            from rasterio.crs import CRS
            from rasterio.warp import transform_bounds

            try:
                given = CRS.from_user_input(bounds_crs)
            except Exception as exc:  # noqa: BLE001 (rasterio's CRSError)
                raise InputError(f"bounds CRS '{bounds_crs}' is not a CRS: {exc}") from None
            if given != grid_slice.crs:
                xmin, ymin, xmax, ymax = transform_bounds(given, grid_slice.crs, xmin, ymin,
                                                          xmax, ymax, densify_pts=21)
        win = from_bounds(xmin, ymin, xmax, ymax, transform=grid_slice.transform)
        r0, c0 = math.floor(win.row_off + 1e-9), math.floor(win.col_off + 1e-9)
        r1 = math.ceil(win.row_off + win.height - 1e-9)
        c1 = math.ceil(win.col_off + win.width - 1e-9)
        asked = max(r1 - r0, 0) * max(c1 - c0, 0)
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, grid_slice.height), min(c1, grid_slice.width)
        if r1 <= r0 or c1 <= c0:
            crs_name = grid_slice.crs.to_string() if grid_slice.crs else "its CRS"
            raise InputError(f"bounds {self.options.bounds}"
                             f"{' (' + bounds_crs + ')' if bounds_crs else ''} do not overlap the "
                             f"reference raster '{grid_slice.path}' (bounds "
                             f"{tuple(round(v, 6) for v in grid_slice.bounds)} in {crs_name}; "
                             "bounds in another CRS need their CRS: the extent's [EPSG:...] "
                             "in QGIS, --bounds-crs on the command line, RunOptions.bounds_crs)")
        if (r1 - r0) * (c1 - c0) < 0.99 * asked:
            self.log(f"warning: the bounds reach beyond the reference raster "
                     f"'{display_name(grid_slice.path)}' (bounds {tuple(grid_slice.bounds)}): the "
                     f"output covers {100 * (r1 - r0) * (c1 - c0) / asked:.0f} % of them")
        return ((r0 // factor, min(math.ceil(r1 / factor), out_h)),
                (c0 // factor, min(math.ceil(c1 / factor), out_w)))

    # ------------------------------------------------------------------ run
    def run(self):
        start = time.perf_counter()
        meta = read_model_metadata(self.model_path)
        self._check_options(meta)
        self.meta = meta
        self._token_masks = meta.token_masks
        if not self._token_masks:
            self.log(f"model {meta.name} uses contract version {meta.schema_version}: nodata "
                     "pixels are zero-filled and whole tiles are attended; re-export it for "
                     "missing-data masks")
        self._task = self._chosen_output(meta)
        if meta.quantisation:
            q = meta.quantisation
            agreement = q.get("agreement") or {}
            self.log(f"model {meta.name}: {meta.precision} variant of "
                     f"{q.get('source_model', 'a float32 model')}, agreement with float32 "
                     f"{agreement.get('value', '?')} {agreement.get('metric', '')} at conversion")
        stacks = self._collect(meta)
        ref_date = reference_date(meta, stacks)
        ref = meta.reference
        grid_slice = grid_raster(stacks[ref.name], ref.gsd_m)
        self.log(f"output grid: {display_name(grid_slice.path)} (the {ref.name} raster whose "
                 f"pixel is closest to the model's {ref.gsd_m:g} m; the earliest among equals)")
        self._check_overlap(stacks, grid_slice)
        self._report_grids(meta, stacks, grid_slice)

        T = ref.tile_px
        factor = self._task.grid_factor(ref)
        quantum = offset_quantum(meta, extra=factor)
        tiles_grid = TileGrid.build(grid_slice.width, grid_slice.height, T,
                                    self.options.tile_overlap_pct, quantum,
                                    no_overlap=not self._task.overlapping_tiles)
        out_rows, out_cols = self._output_window(grid_slice, factor)
        tiles = tiles_grid.tiles((out_rows[0] * factor, out_rows[1] * factor),
                                 (out_cols[0] * factor, out_cols[1] * factor))
        self.log(f"tiles: {len(tiles)} of {T} px, stride {tiles_grid.stride} px "
                 f"({len(tiles_grid.rows)} x {len(tiles_grid.cols)} over the raster)")

        writers = self._open_writers(meta, grid_slice, factor, out_rows, out_cols)
        readers: dict[str, list[SliceReader]] = {}
        try:
            session, provider, in_flight = self._session()
            grids = {m.name: model_grid(grid_slice.crs, grid_slice.transform,
                                        tiles_grid.padded_width, tiles_grid.padded_height, T,
                                        m.tile_px) for m in meta.modalities}
            for m in meta.modalities:
                readers[m.name] = [SliceReader(sl, grids[m.name]) for sl in stacks[m.name]]
            self._set_dates(meta, stacks, ref_date)
            with bounded_gdal_cache(sum(r.cache_bytes for rs in readers.values() for r in rs),
                                    self.log):
                ran, seen = self._loop(session, meta, readers, grids, tiles, factor, out_rows,
                                       out_cols, writers, in_flight)
            if ran == 0 and self.options.bounds is None:
                self._raise_all_nodata(meta, stacks, seen)
            if ran == 0:
                self.log("warning: no tile has valid data in every modality within the bounds: "
                         "the output is all nodata")
            self.check_cancel()
            self.progress(1.0, "writing the output")
            dates = self._dates_in_use(stacks) if ran else {n: [] for n in stacks}
            tags = {"MAESTRO_MODEL": meta.name, "MAESTRO_MODEL_FILE": os.path.basename(
                        self.model_path), "MAESTRO_TASK": meta.task,
                    "MAESTRO_OUTPUT": self._task.output_name,
                    "MAESTRO_PRECISION": meta.precision,
                    **{f"MAESTRO_DATES_{n.upper()}": ",".join(d) for n, d in dates.items()}}
            for w in writers:
                w.set_tags(tags)
            paths = [w.commit() for w in writers]
        except BaseException:
            for w in writers:
                w.abort()
            raise
        finally:
            for rs in readers.values():
                for r in rs:
                    r.close()
        seconds = time.perf_counter() - start
        self.log(f"done: {ran} tiles in {seconds:.1f} s -> {paths[0]}")
        return RunReport(output_path=paths[0], confidence_path=paths[1] if len(paths) > 1 else None,
                         provider=provider, task=meta.task, tiles=ran, seconds=seconds,
                         dates=dates, messages=list(self.messages))

    def _dates_in_use(self, stacks: dict[str, list[Slice]]) -> dict[str, list[str]]:
        """Per modality, the ISO dates that had a valid pixel in a tile the model ran; a date
        without any (cloud-masked, outside its raster's data) was masked out of every tile,
        so it is left out of the report and named in the log."""
        used: dict[str, list[str]] = {}
        for name, stack in stacks.items():
            flags = self._dates_used.get(name)
            used[name] = []
            for k, sl in enumerate(stack):
                day = sl.when.date().isoformat()          # type: ignore[union-attr]
                if flags is None or flags[k]:
                    used[name].append(day)
                else:
                    self.log(f"{name} {day} ({display_name(sl.path)}) has no valid pixel in the "
                             "tiles computed: the model did not see it (not counted in the "
                             "dates used)")
        return used

    def _session(self):
        """The onnxruntime session of the run and the number of batches in flight.

        Batches in flight (engine.pipeline): ``options.batches_in_flight``, or auto: on the
        CPU provider ``min(threads, engine.pipeline.MAX_AUTO_IN_FLIGHT)``, on CUDA 1 (the device runs one
        batch at a time anyway). Each batch's run gets ``threads // in flight`` intra-op
        threads (at least 1), so the run uses ``threads`` cores in all.

        Returns:
            (session, provider actually used, batches in flight).
        """
        from .session import cached_session, choose_providers, wants_float16

        opts = self.options
        on_cpu = choose_providers(opts.device)[0] == "CPUExecutionProvider"
        try:
            in_flight, intra = split_threads(opts.threads, getattr(opts, "batches_in_flight", None),
                                             on_cpu)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        asked = getattr(opts, "batches_in_flight", None)
        if asked and int(asked) > in_flight:
            self.log(f"{asked} batches in flight asked for, {in_flight} used: each runs on at "
                     f"least one of the {opts.threads or os.cpu_count()} threads")
        float16 = getattr(opts, "float16", None)
        session, provider = cached_session(self.model_path, opts.device, intra, float16=float16)
        if provider == "CPUExecutionProvider" and wants_float16(float16):
            self.log("float16 is used on CUDA only: the CPU provider runs the float32 model")
        self.log(f"onnxruntime provider: {provider}; {in_flight} batch(es) in flight, "
                 f"{intra} thread(s) each")
        return session, provider, in_flight

    def _set_dates(self, meta: ModelMetadata, stacks: dict[str, list[Slice]], ref_date,
                   token_masks: bool | None = None) -> None:
        """The date inputs of every batch: int32 [dates, 3] per modality and [3] for
        ``ref_date``, by the time-of-day rule (engine.preprocessing.dates.date_triplet: hour 0,
        except for contract-version-1 models, which keep the hour they always got).

        Args:
            token_masks: feed as contract version 2 (token masks, hour 0) or 1; None: as the
                model's ``schema_version`` says.
        """
        self._token_masks = meta.token_masks if token_masks is None else token_masks
        keep_hour = not self._token_masks
        # every slice's ``when`` is filled by now (open_stack)
        self._dates = {m.name: np.array([date_triplet(s.when, keep_hour)  # type: ignore[arg-type]
                                         for s in stacks[m.name]], dtype=np.int32).reshape(-1, 3)
                       for m in meta.modalities}
        self._ref_date = np.array(date_triplet(ref_date, keep_hour), dtype=np.int32)

    def _report_grids(self, meta, stacks, grid_slice) -> None:
        warning = pixel_size_warning(grid_slice.crs, grid_slice.transform, grid_slice.width,
                                     grid_slice.height, meta.reference.gsd_m)
        if warning:
            self.log(warning)
        for name, stack in stacks.items():
            self.log(f"{name}: {len(stack)} date(s): " + ", ".join(
                f"{display_name(s.path)} {s.when.date().isoformat()} ({s.date_source})"
                for s in stack))

    def _open_writers(self, meta, grid_slice, factor, out_rows, out_cols) -> list[RasterWriter]:
        from affine import Affine

        transform = grid_slice.transform * Affine.translation(out_cols[0] * factor,
                                                              out_rows[0] * factor) * Affine.scale(factor)
        height, width = out_rows[1] - out_rows[0], out_cols[1] - out_cols[0]
        conf = self.options.confidence_path
        if conf:
            check_writable(conf)
        check_writable(self.output_path)
        common = dict(width=width, height=height, crs=grid_slice.crs, transform=transform,
                      cog=self.options.cog)
        layout = self._task.layout(meta)
        main = RasterWriter(self.output_path, count=layout.count, dtype=layout.dtype,
                            classes=layout.classes, band_names=list(layout.band_names),
                            **common)
        writers = [main]
        self._with_confidence = bool(conf) and layout.class_ids
        if conf and not self._with_confidence:
            self.log("no confidence raster for this task (its output already holds scores)")
        if self._with_confidence:
            try:
                writers.append(RasterWriter(conf, count=1, dtype="float32",
                                            band_names=["confidence"], **common))
            except BaseException:
                main.abort()
                raise
        return writers

    def _raise_all_nodata(self, meta, stacks, seen) -> None:
        empty = [m for m in meta.modality_names if not seen.get(m)]
        if empty:
            m = empty[0]
            raise InputError(f"modality '{m}' has no valid pixel over the reference raster: "
                             f"{', '.join(s.path for s in stacks[m])} are all nodata there")
        raise InputError("no pixel of the reference raster has valid data in every modality "
                         f"({', '.join(meta.modality_names)}): the inputs' valid areas do not meet")

    # ------------------------------------------------------------------ tiles
    def _prepare(self, batch_tiles, meta: ModelMetadata, readers, grids) -> PreparedBatch:
        """Read, scale, fill and mask one batch of tiles (runs in the reader thread).

        Tiles of one tile row are read as one strip per slice (one GDAL read for several
        tiles), then cut; each tile's pixels and mask come from
        :func:`engine.preprocessing.tokens.model_input` (the function training's datasets use).
        """
        T = meta.reference.tile_px
        n = len(batch_tiles)
        token_masks = getattr(self, "_token_masks", meta.token_masks)
        seen = {m.name: False for m in meta.modalities}
        arrays: dict[str, list[Any]] = {m.name: [None] * n for m in meta.modalities}
        masks: dict[str, list[Any]] = {m.name: [None] * n for m in meta.modalities}
        valid = [np.ones((T, T), dtype=bool) for _ in range(n)]
        runnable = [True] * n
        date_ok = {m.name: [None] * n for m in meta.modalities}     # bool [dates] per tile
        ref_counts: list[Any] = [None] * n        # per tile: dates with data, per ref pixel
        strips: dict[int, list[int]] = {}
        for i, (row, _) in enumerate(batch_tiles):
            strips.setdefault(row, []).append(i)
        for m in meta.modalities:
            grid, t, stack = grids[m.name], m.tile_px, readers[m.name]
            sc = m.scaling
            idx = ((np.arange(T) + 0.5) * t / T).astype(int)   # model pixel under each ref pixel
            for row, members in strips.items():
                offsets = [int(round(batch_tiles[i][1] * grid.scale)) for i in members]
                c0 = min(offsets)
                width = max(offsets) + t - c0
                mrow = int(round(row * grid.scale))
                raw = np.empty((len(stack), len(m.bands), t, width), dtype=np.float32)
                for k, reader in enumerate(stack):
                    raw[k] = reader.read(mrow, c0, t, width)
                for i, off in zip(members, offsets):
                    pixels, mask, tile_ok = model_input(
                        raw[:, :, :, off - c0:off - c0 + t], sc.transform, sc.mean, sc.std,
                        m.patch_px, m.nodata_fill, token_masks)       # tile_ok [dates, t, t]
                    arrays[m.name][i] = pixels
                    masks[m.name][i] = mask
                    date_ok[m.name][i] = tile_ok.any(axis=(1, 2))
                    if not tile_ok.any():
                        runnable[i] = False
                        continue
                    seen[m.name] = True
                    valid[i] &= tile_ok.any(axis=0)[np.ix_(idx, idx)]
                    if m.name == meta.reference.name:
                        ref_counts[i] = tile_ok.sum(axis=0)[np.ix_(idx, idx)]
        per_tile = [(runnable[i] and valid[i].any(),
                     {name: arrays[name][i] for name in arrays},
                     {name: masks[name][i] for name in masks}, valid[i]) for i in range(n)]
        run = [i for i, p in enumerate(per_tile) if p[0]]
        feeds: dict[str, np.ndarray] | None = None
        if run:
            feeds = {}
            for m in meta.modalities:
                pixels_name, dates_name, mask_name = m.input_names
                feeds[pixels_name] = np.stack([per_tile[i][1][m.name] for i in run])
                feeds[mask_name] = np.stack([per_tile[i][2][m.name] for i in run])
                feeds[dates_name] = np.repeat(self._dates[m.name][None], len(run), axis=0)
            feeds[REF_DATE_INPUT] = np.repeat(self._ref_date[None], len(run), axis=0)
        dates_used = {m.name: np.zeros(len(readers[m.name]), dtype=bool) for m in meta.modalities}
        for i in run:
            for name in dates_used:
                dates_used[name] |= date_ok[name][i]
        counts = np.zeros(len(readers[meta.reference.name]) + 1, dtype=np.int64)
        for i in run:
            counts += np.bincount(ref_counts[i][valid[i]].ravel(), minlength=counts.size)
        return PreparedBatch(list(batch_tiles), run, feeds, [per_tile[i][3] for i in run], seen,
                             dates_used, counts)

    def _loop(self, session, meta, readers, grids, tiles, factor, out_rows, out_cols, writers,
              in_flight: int = 1) -> tuple[int, dict]:
        """Prepare, run and blend every batch; ``in_flight`` batches run at once and are
        blended in tile order (engine.pipeline.InFlight), so the output does not depend on it."""
        task, T = self._task, meta.reference.tile_px
        to = T // factor
        channels = task.channels(meta)
        flush = self._make_flush(meta, writers)
        acc = RowAccumulator(channels, out_rows, out_cols, to, flush)
        bs = int(self.options.batch_size)
        batches = [tiles[i:i + bs] for i in range(0, len(tiles), bs)]
        output_name = task.output_name

        def prepare(batch_tiles) -> PreparedBatch:
            return self._prepare(batch_tiles, meta, readers, grids)

        def infer(prepared: PreparedBatch):
            if prepared.feeds is None:
                return None
            return task.to_grid(session.run([output_name], prepared.feeds)[0])

        ran, done = 0, 0
        seen = {m: False for m in meta.modality_names}
        self._dates_used = {m.name: np.zeros(len(readers[m.name]), dtype=bool)
                            for m in meta.modalities}
        date_counts = None
        with InFlight(prepare, infer, in_flight) as pipeline:
            for b, (prepared, out) in enumerate(pipeline.results(batches)):
                self.check_cancel()
                for m, s in prepared.seen.items():
                    seen[m] |= s
                for m, used in (prepared.dates_used or {}).items():
                    self._dates_used[m] |= used
                if prepared.date_counts is not None:
                    date_counts = prepared.date_counts if date_counts is None else (
                        date_counts + prepared.date_counts)
                for j, i in enumerate(prepared.run):
                    assert out is not None              # prepared.run is empty without feeds
                    row, col = prepared.tiles[i]
                    valid = prepared.valid[j]
                    if factor > 1:
                        valid = valid.reshape(to, factor, to, factor).any(axis=(1, 3))
                    acc.add(out[j].astype(np.float32, copy=False), valid, row // factor,
                            col // factor)
                ran += len(prepared.run)
                done += len(prepared.tiles)
                # rows above the next batch's first tile are final
                acc.advance(batches[b + 1][0][0] // factor if b + 1 < len(batches)
                            else out_rows[1])
                self.progress(0.98 * done / len(tiles), f"tile {done}/{len(tiles)}")
        acc.finish()
        self._report_date_counts(meta.reference.name, date_counts)
        total, valid = self._output_counts
        if ran and total and valid < 0.99 * total:
            self.log(f"{100 * (total - valid) / total:.1f} % of the output pixels are nodata: "
                     "no valid data in every modality there (declared nodata, masked clouds, "
                     "DEM voids, a date's or a modality's edge)")
        return ran, seen

    def _report_date_counts(self, name: str, counts) -> None:
        """Warn when much of the map rests on few of the dates: the share of the mapped
        reference pixels (tiles of the run; overlaps counted once per tile) that had data in
        fewer than half the dates given (clouds, nodata, rasters covering part of the area)."""
        if counts is None or counts.size < 3 or not counts.sum():
            return
        dates = counts.size - 1
        half = (dates + 1) // 2
        share = 100.0 * counts[:half].sum() / counts.sum()
        if share >= 10.0:
            self.log(f"warning: {name}: about {share:.0f} % of the mapped pixels had data in fewer "
                     f"than {half} of the {dates} dates (clouds, nodata, rasters covering part of "
                     "the area): the map rests on fewer observations there")

    def _make_flush(self, meta: ModelMetadata, writers: list[RasterWriter]):
        """The callback turning blended sums into output rows and writing them."""
        decode = self._task.decode
        with_conf = self._with_confidence

        counts = self._output_counts = [0, 0]          # output pixels, valid ones

        def flush(row: int, sums: np.ndarray, weights: np.ndarray, valid: np.ndarray) -> None:
            ok = valid & (weights > 0)
            counts[0] += int(ok.size)
            counts[1] += int(ok.sum())
            values = sums / np.where(weights > 0, weights, 1.0)[None]
            writers[0].write_rows(row, decode(values, ok, meta))
            if with_conf:
                writers[1].write_rows(row, confidence(values, ok))

        return flush
