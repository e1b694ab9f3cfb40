"""The engine API the plugin, the CLI and the batch runner call (docs/architecture.md).

>>> report = run_model("model.onnx", {"s2": ["s2_20200501.tif", "s2_20200611.tif"],
...                                   "dem": ["dem.tif"]}, "landcover.tif", RunOptions())
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .paths import check_outputs
from .runner import Runner
from .types import CancelFn, LogFn, ProgressFn, RunOptions, RunReport, SliceInput

__all__ = ["CancelFn", "LogFn", "ProgressFn", "RunOptions", "RunReport", "SliceInput",
           "run_model"]


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
    options = options or RunOptions()
    check_outputs({"output": output_path, "confidence": options.confidence_path},
                  [("model file", model_path)] + [
                      (f"{m} input", getattr(item, "path", item)) for m, items in inputs.items()
                      for item in ([items] if isinstance(items, (str, SliceInput)) else items)])
    return Runner(model_path, inputs, output_path, options, progress=progress,
                  is_cancelled=is_cancelled, log=log).run()
