"""What maestro:segment, maestro:classify and maestro:embed share: the parameters
(model, one multiple-raster parameter per modality, dates, advanced run options, output)
and the call into ``engine.api.run_model``.

Processing declares parameters before the model is known, so every modality MAESTRO knows
has an optional parameter; processAlgorithm checks them against the model's metadata.
"""
from __future__ import annotations

import os

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputString,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                       QgsProcessingParameterFile,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterString)

from engine.tasks import STYLE_CLASSES, get_task, written_task

from .. import inputs as plugin_inputs
from ..styling import style_on_load
from ..inputs import MODALITY_PARAMS, MODALITY_TITLES, LayerInput, PluginInputError
from .base import DEFAULT_MODEL, MaestroAlgorithm, engine_log

DEVICES = ("auto", "cpu", "cuda")
OUTPUT_EXTENSIONS = (".tif", ".tiff")

MODALITY_HELP = (
    "One layer per date for a time series (order does not matter: the engine sorts by date), "
    "one layer for a single-date modality. Only the modalities the model declares are used; "
    "give exactly those (model_info lists them). From qgis_process repeat the parameter: "
    "S2=a.tif S2=b.tif.")

DATES_HELP = (
    "Optional date overrides. By default each layer's date is read from an acquisition tag of "
    "its metadata (ACQUISITIONDATETIME, DATE_ACQUIRED, ACQUISITION_DATE, SENSING_TIME and "
    "other sensor tags), then from a YYYYMMDD or YYYY-MM-DD in its file name (the sensing date "
    "of a Sentinel-1/2 or Landsat product name). Never from TIFFTAG_DATETIME: that is when the "
    "file was written, so a time-series layer dated only by it stops the run, and so does a "
    "file name with two different dates (export_20240105_S2_20150711.tif), until the date is "
    "given here (or in an ACQUISITIONDATETIME tag, or as the file name's only date). Format: "
    "entries separated by ';', each "
    "[MODALITY:]LAYER=YYYY-MM-DD (or YYYYMMDD) where LAYER is the file path, file name or layer "
    "name, e.g. 'S2:scene_a.tif=2020-05-01; S2:scene_b.tif=2020-06-12'; a file or layer name "
    "that matches several input layers is refused: give their full paths.")

AREA_HELP = (
    "Optional area of interest: the map canvas extent, a layer's extent or a rectangle drawn "
    "on the map, in any CRS (converted to the reference raster's CRS). Only the reference "
    "pixels it touches are computed and written; tiles stay on the grid of a whole-raster "
    "run, so the values are those a whole run gives there. Empty = the whole reference "
    "raster. An area outside the reference raster stops the run with a message.")

FLOAT16_HELP = (
    "On an NVIDIA GPU (CUDA), run a float16 copy of the model: faster and half the GPU memory, "
    "outputs differ slightly from float32 (a few pixels may change class). Ignored on CPU, "
    "which always runs the model as it is (float32, or int8 for a variant made by "
    "maestro:quantize_model). Off = the MAESTRO_FLOAT16 environment variable decides.")

BATCHES_IN_FLIGHT_HELP = (
    "Batches run at the same time, each on its share of the CPU threads (threads / N "
    "onnxruntime threads each), blended in tile order: the output is the same as one batch "
    "after the other. 0 = auto: min(cores, 4) on CPU, 1 on CUDA. More batches in flight "
    "keep more cores busy on small models and use more memory.")

COMMON_HELP = (
    "<h3>Parameters</h3>"
    "<p><b>MODEL</b>: a MAESTRO ONNX model (see maestro:model_info); empty = the bundled "
    "default model.</p>"
    "<p><b>AERIAL, DEM, S2, S1_ASC, S1_DESC, S1, SPOT</b>: one parameter per modality. "
    + MODALITY_HELP + " Rasters may be on any CRS and pixel size: they are resampled to the "
    "model's grid on the reference modality's CRS. Nodata pixels (the raster's nodata value, "
    "outside its extent, non-finite) stay nodata in the output.</p>"
    "<p><b>DATES</b>: " + DATES_HELP + "</p>"
    "<p><b>TILE_OVERLAP</b> (advanced): overlap between neighbouring tiles in percent of a "
    "tile (0-75, default 25); more overlap smooths tile seams and costs time.</p>"
    "<p><b>BATCH_SIZE</b> (advanced): tiles per model call (default 8).</p>"
    "<p><b>DEVICE</b> (advanced): auto (CUDA when onnxruntime-gpu has it, else CPU), cpu, "
    "cuda (fails if CUDA is unusable).</p>"
    "<p>Progress is reported per batch; Cancel stops the run and leaves no output file. "
    "A bad input (band count, missing modality, rasters that do not overlap, no CRS, all "
    "nodata, a time series without dates, an unwritable output) stops with a message naming "
    "it.</p>")


def _advanced(param):
    param.setFlags(param.flags() | Qgis.ProcessingParameterFlag.Advanced)
    return param


def default_model_modalities() -> tuple[str, ...]:
    """Parameter names of the modalities the bundled default model needs (read from its
    ONNX metadata without onnxruntime); () when it cannot be read."""
    try:
        from ..model_file import read_model_card

        return tuple(m.name.upper() for m in read_model_card(DEFAULT_MODEL).modalities)
    except Exception:  # noqa: BLE001 (no default model: no mention)
        return ()


def modality_description(pname: str, needed_by_default: bool) -> str:
    """Parameter label: the title, the key, and whether the default model needs it
    (Processing adds '[optional]' itself: every modality is optional for some model)."""
    need = " (needed by the default model)" if needed_by_default else ""
    return f"{MODALITY_TITLES[pname]} [{pname}]{need}"


def _with_help(param, text):
    param.setHelp(text)
    return param


class InferenceAlgorithm(MaestroAlgorithm):
    """Base of the algorithms that run a model on rasters; subclasses set TASK and help."""

    TASK = ""
    #: The graph output written: None = the task's (engine RunOptions.output).
    GRAPH_OUTPUT: str | None = None
    MODEL = "MODEL"
    DATES = "DATES"
    AREA = "AREA"
    TILE_OVERLAP = "TILE_OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    FLOAT16 = "FLOAT16"
    BATCHES_IN_FLIGHT = "BATCHES_IN_FLIGHT"
    OUTPUT = "OUTPUT"
    PROVIDER = "PROVIDER"
    DATES_USED = "DATES_USED"

    OUTPUT_DESCRIPTION = "Output raster"
    AREA_DESCRIPTION = "Area of interest (empty = the whole reference raster)"
    AREA_HELP = AREA_HELP
    OUTPUT_HELP = ""

    # ------------------------------------------------------------------ parameters
    def initAlgorithm(self, config=None):
        # An exception here would reach QGIS from inside the provider's loading.
        try:
            self.add_parameters()
        except Exception:  # noqa: BLE001
            import traceback

            from qgis.core import QgsMessageLog

            QgsMessageLog.logMessage(f"maestro:{self.name()} parameters:\n"
                                     f"{traceback.format_exc()}", "MAESTRO",
                                     Qgis.MessageLevel.Critical)

    def add_parameters(self):
        self.addParameter(_with_help(QgsProcessingParameterFile(
            self.MODEL, "MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
            optional=True), "A MAESTRO ONNX model; empty = the bundled default model."))
        needed = default_model_modalities()
        for pname in MODALITY_PARAMS:
            need = ("The bundled default model needs this input. " if pname in needed else
                    "The bundled default model does not use this input. " if needed else "")
            self.addParameter(_with_help(QgsProcessingParameterMultipleLayers(
                pname, modality_description(pname, pname in needed),
                Qgis.ProcessingSourceType.Raster, optional=True),
                f"{MODALITY_TITLES[pname]}. {need}{MODALITY_HELP}"))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.DATES, "Date overrides ([MODALITY:]LAYER=YYYY-MM-DD; ...)",
            optional=True), DATES_HELP))
        self.addParameter(_with_help(QgsProcessingParameterExtent(
            self.AREA, self.AREA_DESCRIPTION, optional=True), self.AREA_HELP))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.TILE_OVERLAP, "Tile overlap (%)", Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=25, minValue=0, maxValue=75)),
            "Overlap between neighbouring tiles, percent of a tile (0-75)."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Batch size (tiles per model call)",
            Qgis.ProcessingNumberParameterType.Integer, defaultValue=8, minValue=1,
            maxValue=1024)), "Tiles per model call; larger uses more memory."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterEnum(
            self.DEVICE, "Device", options=list(DEVICES), defaultValue="auto",
            usesStaticStrings=True)),
            "auto: CUDA when available, else CPU; cpu; cuda (fails when CUDA is unusable)."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterBoolean(
            self.FLOAT16, "Use float16 on an NVIDIA GPU (ignored on CPU)", defaultValue=False)),
            FLOAT16_HELP))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterNumber(
            self.BATCHES_IN_FLIGHT, "Batches in flight (0 = auto)",
            Qgis.ProcessingNumberParameterType.Integer, defaultValue=0, minValue=0,
            maxValue=64)), BATCHES_IN_FLIGHT_HELP))
        self.addParameter(_with_help(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.OUTPUT_DESCRIPTION), self.OUTPUT_HELP))
        self.add_task_parameters()
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, "Execution provider used"))
        self.addOutput(QgsProcessingOutputString(self.DATES_USED, "Dates used per modality"))

    def add_task_parameters(self):
        """Extra parameters of a task (segmentation adds CONFIDENCE)."""

    def shortHelpString(self):
        needed = default_model_modalities()
        default = (f"<p><b>Inputs the bundled default model needs: {', '.join(needed)}</b> "
                   "(the other modality inputs stay empty). Another model: see "
                   "maestro:model_info or the MAESTRO panel.</p>") if needed else ""
        return (self.TASK_HELP + default + COMMON_HELP + self.SPEED_HELP
                + f"<p><b>AREA</b>: {self.AREA_HELP}</p>"
                f"<p><b>OUTPUT</b>: {self.OUTPUT_HELP}</p>")

    TASK_HELP = ""
    #: FLOAT16's and BATCHES_IN_FLIGHT's part of shortHelpString (maestro:batch_segment has
    #: no BATCHES_IN_FLIGHT: its Dask workers run one engine call each).
    SPEED_HELP = (f"<p><b>FLOAT16</b> (advanced): {FLOAT16_HELP}</p>"
                  f"<p><b>BATCHES_IN_FLIGHT</b> (advanced): {BATCHES_IN_FLIGHT_HELP}</p>")

    # ------------------------------------------------------------------ running
    def model_metadata(self, parameters, context):
        """(model path, validated metadata) of MODEL, refusing another task's model."""
        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        from engine.contract import read_model_metadata

        meta = self.engine_call(read_model_metadata, path)
        if meta.task != self.TASK:
            raise QgsProcessingException(
                f"model '{meta.name}' ({path}) is a {meta.task} model; maestro:{self.name()} "
                f"needs a {self.TASK} model (use maestro:{get_task(meta.task).algorithm_id})")
        return path, meta

    def layer_inputs(self, parameters, context) -> dict[str, list[LayerInput]]:
        """Parameter name -> the layers given (file sources)."""
        given = {}
        for pname in MODALITY_PARAMS:
            layers = self.parameterAsLayerList(parameters, pname, context) or []
            items = []
            for layer in layers:
                if layer.providerType() != "gdal":
                    raise QgsProcessingException(
                        f"{pname}: layer '{layer.name()}' is a '{layer.providerType()}' raster; "
                        "MAESTRO reads GDAL rasters (files)")
                items.append(LayerInput(layer.source(), layer.name()))
            if items:
                given[pname] = items
        return given

    def output_path(self, parameters, key, context) -> str:
        path = self.parameterAsOutputLayer(parameters, key, context)
        if path and os.path.splitext(path)[1].lower() not in OUTPUT_EXTENSIONS:
            raise QgsProcessingException(
                f"{key}: '{path}' is not a GeoTIFF (.tif): MAESTRO writes GeoTIFF/COG only")
        return path

    def float16(self, parameters, context) -> bool | None:
        """FLOAT16 as the engine takes it: True when ticked, None (= the MAESTRO_FLOAT16
        environment variable) when not."""
        return True if self.parameterAsBoolean(parameters, self.FLOAT16, context) else None

    def run_options(self, parameters, context, **extra):
        from engine.api import RunOptions

        in_flight = self.parameterAsInt(parameters, self.BATCHES_IN_FLIGHT, context)
        return RunOptions(
            tile_overlap_pct=self.parameterAsInt(parameters, self.TILE_OVERLAP, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            batches_in_flight=in_flight if in_flight > 0 else None,
            float16=self.float16(parameters, context),
            **{"expect_task": self.TASK if self.GRAPH_OUTPUT is None else None,
               "output": self.GRAPH_OUTPUT, **extra})

    def has_area(self, parameters) -> bool:
        """Whether AREA was given (an empty string or None = not given)."""
        return parameters.get(self.AREA) not in (None, "")

    def area_bounds(self, parameters, context, meta, matched):
        """AREA as ``(xmin, ymin, xmax, ymax)`` in the CRS of the raster that defines the
        output grid (the engine's rule: the earliest slice of the reference modality), or
        None when AREA is empty. An extent without a CRS is taken as in that CRS.

        Raises:
            QgsProcessingException: the reference raster cannot be read (engine message).
        """
        if not self.has_area(parameters):
            return None
        path = self.engine_call(_reference_raster, meta, matched)
        crs = self.engine_call(_raster_crs, path)
        rect = self.parameterAsExtent(parameters, self.AREA, context, crs)
        if rect.isNull() or rect.isEmpty():
            raise QgsProcessingException(f"AREA: the extent '{parameters.get(self.AREA)}' is "
                                         "empty")
        return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

    def check_dependencies(self):
        from ..deps import missing_dependencies, missing_message

        missing = missing_dependencies()
        if missing:
            raise QgsProcessingException(missing_message(missing))

    def matched_inputs(self, meta, given, parameters, context):
        """The layers ``given`` per modality matched to the model's modalities, with the DATES
        overrides applied.

        Raises:
            QgsProcessingException: a modality missing or a layer that does not fit, or a
                malformed DATES value (the plugin's input error, one line).
        """
        try:
            matched = plugin_inputs.match_modalities(meta, given)
            return plugin_inputs.apply_date_overrides(
                matched, plugin_inputs.parse_date_overrides(
                    self.parameterAsString(parameters, self.DATES, context)))
        except PluginInputError as exc:
            raise QgsProcessingException(str(exc)) from exc

    def run_engine(self, parameters, context, feedback, output_key=OUTPUT, **option_extra):
        """Check dependencies, model and inputs, then run the engine.

        Returns:
            (RunReport, model metadata, output path).
        """
        self.check_dependencies()
        model_path, meta = self.model_metadata(parameters, context)
        matched = self.matched_inputs(meta, self.layer_inputs(parameters, context), parameters,
                                      context)
        output = self.output_path(parameters, output_key, context)
        bounds = self.area_bounds(parameters, context, meta, matched)
        if bounds is not None:
            feedback.pushInfo("Area of interest in the reference CRS: "
                              + ", ".join(f"{v:.3f}" for v in bounds))
        options = self.run_options(parameters, context, bounds=bounds, **option_extra)
        feedback.pushInfo(f"Model: {meta.name} ({meta.task}), {model_path}")

        def progress(fraction, message=""):
            feedback.setProgress(100.0 * max(0.0, min(1.0, float(fraction))))
            if message:
                feedback.setProgressText(message)

        from engine.api import run_model

        report = self.engine_call(
            run_model, model_path, plugin_inputs.to_engine_inputs(matched), output, options,
            progress=progress, is_cancelled=feedback.isCanceled, log=engine_log(feedback))
        from ..diagnostics import record_run

        record_run(report, model_path)
        feedback.pushInfo(f"Execution provider: {report.provider}; {report.tiles} tiles in "
                          f"{report.seconds:.1f} s")
        return report, meta, output

    def style_output(self, context, output, meta) -> None:
        """Give the output the default style of its task (engine.tasks registry)."""
        if written_task(meta, self.GRAPH_OUTPUT).default_style(meta) == STYLE_CLASSES:
            style_on_load(context, output, classes=meta.classes)

    def base_results(self, report, output):
        import json

        return {self.OUTPUT: output, self.PROVIDER: report.provider,
                self.DATES_USED: json.dumps(report.dates, sort_keys=True, default=str)}


def extent_and_crs(alg, parameters, key, context):
    """An extent parameter as ``((xmin, ymin, xmax, ymax), crs text)`` in its own CRS (crs text
    ``EPSG:xxxx`` or WKT, None when the extent carries no CRS), or None when it is empty."""
    if parameters.get(key) in (None, ""):
        return None
    rect = alg.parameterAsExtent(parameters, key, context)
    crs = alg.parameterAsExtentCrs(parameters, key, context)
    bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
    return bounds, ((crs.authid() or crs.toWkt()) if crs.isValid() else None)


def _reference_raster(meta, matched) -> str:
    """Path of the raster whose grid the engine writes the output on: the earliest slice of
    the reference modality, by the engine's own stack rules (engine.stack.collect_stack)."""
    from engine.stack import collect_stack

    layers = plugin_inputs.to_engine_inputs(matched)[meta.reference_modality]
    return collect_stack(meta.reference, layers, lambda message: None)[0].path


def _raster_crs(path: str):
    """The QgsCoordinateReferenceSystem of a raster file (read with rasterio, as the
    engine reads it)."""
    import rasterio
    from qgis.core import QgsCoordinateReferenceSystem

    with rasterio.open(path) as src:
        wkt = src.crs.to_wkt() if src.crs else ""
    return QgsCoordinateReferenceSystem.fromWkt(wkt)

