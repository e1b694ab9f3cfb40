"""The engine API the plugin, the CLI and the batch runner call (docs/architecture.md).

>>> report = run_model("model.onnx", {"s2": ["s2_20200501.tif", "s2_20200611.tif"],
...                                   "dem": ["dem.tif"]}, "landcover.tif", RunOptions())
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

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
        threads: onnxruntime intra-op threads (None = all cores).
        confidence_path: optional confidence raster (float32: max class probability).
        bounds: ``(xmin, ymin, xmax, ymax)`` in the reference raster's CRS: compute only this
            part; tiles stay on the grid anchored at the reference raster's top-left pixel.
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
    confidence_path: str | None = None
    bounds: tuple[float, float, float, float] | None = None
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
        dates: per modality, the dates used (ISO), sorted.
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


def run_model(model_path: str, inputs: Mapping[str, Sequence[SliceInput | str]], output_path: str,
              options: RunOptions | None = None, progress: ProgressFn | None = None,
              is_cancelled: CancelFn | None = None, log: LogFn | None = None) -> RunReport:
    """Run a MAESTRO ONNX model over rasters and write its output raster.

    Args:
        model_path: ONNX file exported by ``training`` (docs/model-contract.md).
        inputs: modality name (lower case, as in the metadata) -> its slices, any order;
            a plain string is a path whose date is read from tags or the file name.
        output_path: GeoTIFF to write (COG when ``options.cog``); written to a temporary
            name and renamed only on success.
        options: see :class:`RunOptions`.
        progress: ``progress(fraction 0..1, message)``.
        is_cancelled: polled between batches; True stops the run with CancelledError.
        log: receives one line per notable event (also kept in ``RunReport.messages``).

    Raises:
        InputError, ContractError, ModelFileError, OutputError, CancelledError,
        RuntimeDependencyError: see engine.errors. OutputError before any work when an
        output is an input (or a file a VRT input reads) or both outputs are one file
        (engine.paths.check_outputs).
    """
    from .paths import check_outputs
    from .runner import Runner

    options = options or RunOptions()
    check_outputs({"output": output_path, "confidence": options.confidence_path},
                  [("model file", model_path)] + [
                      (f"{m} input", getattr(item, "path", item)) for m, items in inputs.items()
                      for item in ([items] if isinstance(items, (str, SliceInput)) else items)])
    return Runner(model_path, inputs, output_path, options, progress=progress,
                  is_cancelled=is_cancelled, log=log).run()
