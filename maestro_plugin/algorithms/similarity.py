"""maestro:similarity: example points/polygons -> a raster of cosine similarity of every place's
MAESTRO encoder features to theirs (engine/classes/similarity.py), styled on load.

Also the helpers maestro:change shares: computing embeddings into a temporary file and a
colour-ramp styler.
"""
from __future__ import annotations

import json
import os
import uuid

from qgis.core import (QgsColorRampShader, Qgis, QgsProcessingException,
                       QgsProcessingParameterBoolean,
                       QgsProcessingLayerPostProcessorInterface, QgsProcessingOutputNumber,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterRasterLayer,
                       QgsProcessingUtils, QgsRasterLayer, QgsRasterShader,
                       QgsSingleBandPseudoColorRenderer, QgsStyle)

from .. import inputs as plugin_inputs
from .base import DEFAULT_MODEL, engine_log
from .inference import InferenceAlgorithm, _with_help


def ramp_renderer(layer, ramp_name: str, lo: float, hi: float):
    """A pseudo-colour renderer of band 1 from ``lo`` to ``hi`` with a QGIS default ramp."""
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    shader_fn = QgsColorRampShader(lo, hi, ramp)
    shader_fn.classifyColorRamp(5, -1)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    return renderer


class RampStyler(QgsProcessingLayerPostProcessorInterface):
    """Post-processor giving a loaded output a colour ramp (kept alive in :data:`_KEEP`)."""

    def __init__(self, ramp_name: str, lo: float, hi: float):
        super().__init__()
        self.args = (ramp_name, lo, hi)

    def postProcessLayer(self, layer, context, feedback):
        try:
            if isinstance(layer, QgsRasterLayer) and layer.isValid():
                layer.setRenderer(ramp_renderer(layer, *self.args))
                layer.triggerRepaint()
        except Exception as exc:  # noqa: BLE001 (a style problem must not fail the run)
            feedback.reportError(f"MAESTRO: could not style {layer.name()}: {exc}")


_KEEP: list = []


def style_ramp_on_load(context, output: str, ramp_name: str, lo: float, hi: float) -> None:
    if output and context.willLoadLayerOnCompletion(output):
        styler = RampStyler(ramp_name, lo, hi)
        _KEEP.append(styler)
        context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)


class EmbeddingsRunMixin:
    """Running the model for its encoder features into a temporary GeoTIFF."""

    def any_model(self, parameters, context):
        """(path, metadata) of MODEL, whatever its task (the encoder features are asked)."""
        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        from engine.contract import read_model_metadata

        meta = self.engine_call(read_model_metadata, path)
        self._meta_for_area = meta
        return path, meta

    def embeddings_to_temp(self, model_path, matched, parameters, context, feedback,
                           progress=(0.0, 1.0), label=""):
        """Run the model for its ``embeddings`` into a temporary file; returns its path."""
        from engine.api import run_model

        path = os.path.join(QgsProcessingUtils.tempFolder(), f"embeddings-{uuid.uuid4().hex[:8]}.tif")
        bounds = self.area_bounds(parameters, context, self._meta_for_area, matched)
        options = self.run_options(parameters, context, output="embeddings", bounds=bounds)
        options.expect_task, options.cog = None, False
        a, b = progress

        def report(fraction, message=""):
            feedback.setProgress(100.0 * (a + (b - a) * fraction))
            if message:
                feedback.setProgressText(f"{label}{message}")

        result = self.engine_call(run_model, model_path, plugin_inputs.to_engine_inputs(matched),
                                  path, options, progress=report,
                                  is_cancelled=feedback.isCanceled, log=engine_log(feedback))
        return result.output_path


class SimilarityAlgorithm(EmbeddingsRunMixin, InferenceAlgorithm):
    TASK = ""
    EXAMPLES = "EXAMPLES"
    EMBEDDINGS = "EMBEDDINGS"
    EXAMPLE_TOKENS = "EXAMPLE_TOKENS"
    CENTER = "CENTER"
    OUTPUT_DESCRIPTION = "Similarity"
    OUTPUT_HELP = ("float32 GeoTIFF (COG) on the token grid: cosine similarity (-1..1, 1 = the "
                   "same features as the examples) of each place's encoder features to the "
                   "mean of the examples' (both with the raster's mean removed when CENTER); "
                   "NaN = nodata. Styled with a colour ramp on load.")
    TASK_HELP = ("<p>Find places like your examples: computes MAESTRO encoder features for "
                 "the rasters (any model that gives them), averages the features under the "
                 "example points/polygons and maps the cosine similarity of every place to "
                 "that average. Or give an embeddings raster made earlier by maestro:embed "
                 "(EMBEDDINGS) and no model is run.</p>"
                 "<p><b>EXAMPLES</b>: points (the token containing each) or polygons (tokens "
                 "whose centre is inside).</p>")

    def name(self):
        return "similarity"

    def displayName(self):
        return "Similarity to examples (embeddings)"

    def add_task_parameters(self):
        self.addParameter(_with_help(QgsProcessingParameterFeatureSource(
            self.EXAMPLES, "Example points or polygons", [Qgis.ProcessingSourceType.VectorAnyGeometry]),
            "Places that show what you look for."))
        self.addParameter(_with_help(QgsProcessingParameterRasterLayer(
            self.EMBEDDINGS, "Embeddings raster made earlier (then no model run)",
            optional=True), "An output of maestro:embed; when given, MODEL and the modality "
                            "inputs are not used."))
        self.addParameter(_with_help(QgsProcessingParameterBoolean(
            self.CENTER, "Compare with the raster's mean place removed", defaultValue=True),
            "Subtract the mean embedding of the raster from every place and from the examples "
            "first: places are compared by how they differ from the average place (without "
            "it the features every place shares dominate and all similarities are high)."))
        self.addOutput(QgsProcessingOutputNumber(self.EXAMPLE_TOKENS,
                                                 "Tokens under the examples"))

    def prepareAlgorithm(self, parameters, context, feedback):
        """Read the example shapes here: Processing calls this in the main thread (also for a
        background QgsProcessingAlgRunnerTask), where project layers may be read; a layer
        read from the task's thread can crash QGIS. A problem found here is raised by
        processAlgorithm, so that it reaches the user the same way as every other error."""
        self._shapes, self._shapes_crs, self._examples_error = [], "", None
        source = self.parameterAsSource(parameters, self.EXAMPLES, context)
        if source is None:
            self._examples_error = QgsProcessingException("EXAMPLES: no layer given")
            return True
        self._shapes = [json.loads(f.geometry().asJson()) for f in source.getFeatures()
                        if f.geometry() is not None and not f.geometry().isEmpty()]
        self._shapes_crs = source.sourceCrs().toWkt()
        if not self._shapes:
            self._examples_error = QgsProcessingException("EXAMPLES: the layer has no geometry")
        return True

    def processAlgorithm(self, parameters, context, feedback):
        from engine.classes.similarity import query_vector, similarity_map

        if self._examples_error is not None:
            raise self._examples_error
        shapes = self._shapes
        output = self.output_path(parameters, self.OUTPUT, context)
        emb_layer = self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
        if emb_layer is not None:
            emb_path = emb_layer.source()
        else:
            self.check_dependencies()
            model_path, meta = self.any_model(parameters, context)
            matched = self.matched_inputs(meta, self.layer_inputs(parameters, context),
                                          parameters, context)
            emb_path = self.embeddings_to_temp(model_path, matched, parameters, context,
                                               feedback, (0.0, 0.8), "encoder features: ")
        query, n = self.engine_call(query_vector, emb_path, shapes, self._shapes_crs)
        feedback.pushInfo(f"{n} token(s) under the examples")
        path = self.engine_call(similarity_map, emb_path, query, output,
                                center=self.parameterAsBoolean(parameters, self.CENTER, context),
                                progress=lambda f: feedback.setProgress(80 + 20 * f),
                                is_cancelled=feedback.isCanceled)
        style_ramp_on_load(context, output, "Viridis", -1.0, 1.0)
        return {self.OUTPUT: path, self.EXAMPLE_TOKENS: n}
