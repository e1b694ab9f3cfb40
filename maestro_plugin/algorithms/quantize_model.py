"""maestro:quantize_model: an int8 variant of a MAESTRO model, calibrated and checked on the
user's own rasters (engine/quantize.py); written only when it agrees with float32."""
from __future__ import annotations

import os

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingOutputString, QgsProcessingParameterEnum,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterString)

from .. import inputs as plugin_inputs
from ..inputs import MODALITY_PARAMS, MODALITY_TITLES, PluginInputError
from .base import DEFAULT_MODEL, engine_log
from .inference import DATES_HELP, MODALITY_HELP, InferenceAlgorithm, _with_help

METHODS = ("auto", "static", "static-qdq", "dynamic")


class QuantizeModelAlgorithm(InferenceAlgorithm):
    """Reuses the inference algorithms' model, modality and date parameters and their input
    matching; writes an .onnx instead of a raster."""

    METHOD = "METHOD"
    MIN_AGREEMENT = "MIN_AGREEMENT"
    TILES = "TILES"
    AGREEMENT = "AGREEMENT"
    METHOD_USED = "METHOD_USED"
    SPEEDUP = "SPEEDUP"

    def name(self):
        return "quantize_model"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return "Make an int8 model (faster on CPUs with VNNI)"

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        try:
            from engine.quantize import cpu_int8_support, int8_support_message

            here = int8_support_message(cpu_int8_support())
        except ImportError as exc:  # numpy missing: the help still shows
            here = f"unknown (the engine cannot load: {exc})"
        return (
            "<p>Writes an int8 (quantised) variant of a MAESTRO model with onnxruntime's "
            "quantisation tools. It is calibrated on tiles of <b>your</b> rasters (read and "
            "prepared as a real run would) and compared with the float32 model on other tiles "
            "of them: the variant is written only when at least MIN_AGREEMENT % of those "
            "pixels get the same class (tiles for classification, cosine similarity for "
            "embeddings). The method and the agreement are recorded in the model's metadata "
            "(maestro:model_info shows them). Use the variant like any model.</p>"
            f"<p><b>This computer</b>: {here}.</p>"
            "<p><b>MODEL</b>: the float32 model; empty = the bundled default model.</p>"
            "<p><b>AERIAL, DEM, S2, ...</b>: rasters as for maestro:segment: "
            + MODALITY_HELP + "</p>"
            "<p><b>DATES</b>: " + DATES_HELP + "</p>"
            "<p><b>METHOD</b>: auto (tries static QOperator, static QDQ and dynamic and keeps "
            "the fastest that passes), or one of them.</p>"
            "<p><b>MIN_AGREEMENT</b>: percent (default 99).</p>"
            "<p><b>TILES</b>: tiles read for calibration and check together (default 64).</p>"
            "<p><b>OUTPUT</b>: the int8 model (.onnx).</p>")

    def add_parameters(self):
        self.addParameter(_with_help(QgsProcessingParameterFileDestination(
            self.OUTPUT, "int8 model", fileFilter="ONNX models (*.onnx)"),
            "The int8 model to write (.onnx); written only if the agreement check passes."))
        from qgis.core import QgsProcessingParameterFile

        self.addParameter(_with_help(QgsProcessingParameterFile(
            self.MODEL, "MAESTRO model (.onnx; empty = bundled default)", extension="onnx",
            optional=True), "The float32 MAESTRO ONNX model; empty = the bundled default."))
        for pname in MODALITY_PARAMS:
            self.addParameter(_with_help(QgsProcessingParameterMultipleLayers(
                pname, f"{MODALITY_TITLES[pname]} [{pname}]", Qgis.ProcessingSourceType.Raster,
                optional=True), f"{MODALITY_TITLES[pname]}. {MODALITY_HELP}"))
        self.addParameter(_with_help(QgsProcessingParameterString(
            self.DATES, "Date overrides ([MODALITY:]LAYER=YYYY-MM-DD; ...)",
            optional=True), DATES_HELP))
        self.addParameter(_with_help(QgsProcessingParameterEnum(
            self.METHOD, "Method", options=list(METHODS), defaultValue="auto",
            usesStaticStrings=True),
            "auto: the fastest variant that passes the check; static (QOperator), static-qdq, "
            "dynamic."))
        self.addParameter(_with_help(QgsProcessingParameterNumber(
            self.MIN_AGREEMENT, "Minimum agreement with float32 (%)",
            Qgis.ProcessingNumberParameterType.Double, defaultValue=99.0, minValue=0.0,
            maxValue=100.0), "Refuse the variant below this agreement (percent)."))
        self.addParameter(_with_help(QgsProcessingParameterNumber(
            self.TILES, "Tiles for calibration and check", Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=64, minValue=4, maxValue=4096),
            "Tiles read from the rasters, half for calibration, half for the check."))
        self.addOutput(QgsProcessingOutputNumber(self.AGREEMENT, "Agreement with float32 (%)"))
        self.addOutput(QgsProcessingOutputString(self.METHOD_USED, "Method kept"))
        self.addOutput(QgsProcessingOutputNumber(self.SPEEDUP, "Speed vs float32 (measured here)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.check_dependencies()
        from engine.contract import read_model_metadata
        from engine.quantize import (QuantizeOptions, cpu_int8_support, int8_support_message,
                                     quantize_model)

        model_path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        meta = self.engine_call(read_model_metadata, model_path)
        try:
            matched = plugin_inputs.match_modalities(meta, self.layer_inputs(parameters, context))
            overrides = plugin_inputs.parse_date_overrides(
                self.parameterAsString(parameters, self.DATES, context))
            matched = plugin_inputs.apply_date_overrides(matched, overrides)
        except PluginInputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if os.path.splitext(output)[1].lower() != ".onnx":
            raise QgsProcessingException(f"OUTPUT: '{output}' is not an .onnx file")
        support = cpu_int8_support()
        if support is not True:
            feedback.reportError(int8_support_message(support), fatalError=False)
        options = QuantizeOptions(
            method=self.parameterAsEnumString(parameters, self.METHOD, context) or "auto",
            min_agreement_pct=self.parameterAsDouble(parameters, self.MIN_AGREEMENT, context),
            tiles=self.parameterAsInt(parameters, self.TILES, context))
        feedback.pushInfo(f"Model: {meta.name} ({meta.task}), {model_path}")
        report = self.engine_call(quantize_model, model_path,
                                  plugin_inputs.to_engine_inputs(matched), output, options,
                                  log=engine_log(feedback))
        return {self.OUTPUT: report.output_path, self.AGREEMENT: report.agreement_pct,
                self.METHOD_USED: report.method, self.SPEEDUP: report.speedup}
