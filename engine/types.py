"""The engine's value types: what a run takes and gives (re-exported by engine.api).

A leaf module (standard library only): the runner, the stack reader, the CLIs and the batch
runner import these without importing each other.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class SliceInput:
    """One raster of one date (or the raster of a single-date modality).

    Attributes:
        path: raster file (anything GDAL opens).
        date: acquisition date; overrides the date the engine reads from tags or the name.
    """

    path: str
    date: _dt.date | None = None


@dataclass
class RunOptions:
    """How to run a model over rasters.

    Attributes:
        tile_overlap_pct: overlap of neighbouring tiles, percent of the tile side (0..75);
            rounded so that every modality's tile offsets stay whole pixels.
        batch_size: tiles per onnxruntime call.
        device: ``auto`` | ``cpu`` | ``cuda``.
        threads: CPU threads the run may use (None = all cores): split between the batches
            in flight, each batch's onnxruntime session getting ``threads // in flight``.
        batches_in_flight: batches run at the same time (engine.pipeline), blended in tile
            order, so that the output is the same as one batch after the other. None = auto:
            on the CPU provider ``min(threads, 4)`` (each on its own thread: no thread barrier
            after each of the model's small operators; docs/performance.md), 1 on CUDA.
        float16: on CUDA, run a float16 copy of the model (engine.session.float16_model;
            graph I/O stays float32). None = the ``MAESTRO_FLOAT16`` environment variable.
            Ignored on the CPU provider (float32 runs; a log line says so).
        confidence_path: optional confidence raster (float32: max class probability).
        bounds: ``(xmin, ymin, xmax, ymax)`` in ``bounds_crs`` (default the reference
            raster's CRS): compute only this part; tiles stay on the grid anchored at the
            reference raster's top-left pixel.
        bounds_crs: CRS of ``bounds`` (anything rasterio's CRS accepts: ``EPSG:4326``, WKT);
            None = the reference raster's.
        cog: convert the output to a Cloud-Optimized GeoTIFF.
        expect_task: refuse a model of another task (InputError).
        output: the graph output to write: None = the task output; ``"embeddings"`` = the
            encoder features [dim bands, float32, token grid] of any model that has them
            (embedding models, and every contract-2 segmentation/classification model).
    """

    tile_overlap_pct: float = 25
    batch_size: int = 8
    device: str = "auto"
    threads: int | None = None
    batches_in_flight: int | None = None
    float16: bool | None = None
    confidence_path: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    bounds_crs: str | None = None
    cog: bool = True
    expect_task: str | None = None
    output: str | None = None


@dataclass
class RunReport:
    """What a run did.

    Attributes:
        output_path, confidence_path: files written (confidence None when not asked).
        provider: onnxruntime execution provider actually used.
        task: the model's task.
        tiles: tiles run through the model (tiles with no valid data are skipped).
        seconds: wall time of the run.
        dates: per modality, the dates the model saw (ISO), sorted: a date without any valid
            pixel in the tiles computed (masked out of all of them) is left out, and named in
            ``messages``.
        messages: the log lines of the run.
    """

    output_path: str
    confidence_path: str | None
    provider: str
    task: str
    tiles: int
    seconds: float
    dates: dict[str, list[str]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
