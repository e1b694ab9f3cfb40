"""maestro:change: two periods of the same area -> per-place distance between their MAESTRO
encoder features (engine/classes/similarity.py), styled, and optionally a change mask."""
from __future__ import annotations

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination)

from ..inputs import MODALITY_PARAMS, MODALITY_TITLES, LayerInput
from .inference import InferenceAlgorithm, _with_help
from .similarity import EmbeddingsRunMixin, style_ramp_on_load

SUFFIX = "_2"


class ChangeAlgorithm(EmbeddingsRunMixin, InferenceAlgorithm):
    TASK = ""
    THRESHOLD = "THRESHOLD"
    CHANGE_MASK = "CHANGE_MASK"
    THRESHOLD_USED = "THRESHOLD_USED"
    CHANGED_FRACTION = "CHANGED_FRACTION"
    OUTPUT_DESCRIPTION = "Embedding distance"
    OUTPUT_HELP = ("float32 GeoTIFF (COG) on the token grid: cosine distance 1 - cos(e1, e2) "
                   "between the two periods' encoder features (0 = same, up to 2); NaN where "
                   "either period is nodata. Styled with a colour ramp on load.")
    TASK_HELP = ("<p>Change between two periods: runs the model (any model that gives encoder "
                 "features) on period 1 (the usual modality inputs: S2, DEM...) and on period 2 "
                 "(the inputs with the suffix _2: S2_2, DEM_2...; a modality not given for "
                 "period 2 reuses period 1's layers, e.g. a DEM), and maps the distance between "
                 "the two feature vectors of every place. The two periods' reference rasters "
                 "must be on the same grid.</p>"
                 "<p><b>THRESHOLD</b>: distance above which a place is 'changed' in "
                 "CHANGE_MASK; 0 = chosen by Otsu's method on the distances (Otsu 1979).</p>"
                 "<p><b>CHANGE_MASK</b> (optional): uint8, 1 = change, 0 = no change, "
                 "255 = nodata.</p>")

    def name(self):
        return "change"

    def displayName(self):
        return "Change between two periods (embedding distance)"

    def add_task_parameters(self):
        for pname in MODALITY_PARAMS:
            self.addParameter(_with_help(QgsProcessingParameterMultipleLayers(
                pname + SUFFIX, f"Period 2: {MODALITY_TITLES[pname]} [{pname}{SUFFIX}]",
                Qgis.ProcessingSourceType.Raster, optional=True),
                f"Period 2's {MODALITY_TITLES[pname]}; empty = period 1's layers."))
        self.addParameter(_with_help(QgsProcessingParameterNumber(
            self.THRESHOLD, "Change threshold (cosine distance; 0 = automatic, Otsu)",
            Qgis.ProcessingNumberParameterType.Double, defaultValue=0.0, minValue=0.0, maxValue=2.0),
            "Distance above which a place counts as changed."))
        self.addParameter(_with_help(QgsProcessingParameterRasterDestination(
            self.CHANGE_MASK, "Change mask", optional=True, createByDefault=False),
            "uint8: 1 = change, 0 = no change, 255 = nodata."))
        self.addOutput(QgsProcessingOutputNumber(self.THRESHOLD_USED, "Threshold used"))
        self.addOutput(QgsProcessingOutputNumber(self.CHANGED_FRACTION,
                                                 "Fraction of valid places changed"))

    def period_two(self, parameters, context, first):
        given = {}
        for pname in MODALITY_PARAMS:
            layers = self.parameterAsLayerList(parameters, pname + SUFFIX, context) or []
            if layers:
                given[pname] = [LayerInput(layer.source(), layer.name()) for layer in layers]
        if not given:
            raise QgsProcessingException(
                "Period 2 has no input: give at least one of "
                + ", ".join(p + SUFFIX for p in MODALITY_PARAMS))
        for pname, layers in first.items():
            given.setdefault(pname, layers)
        return given

    def processAlgorithm(self, parameters, context, feedback):
        from engine.classes.similarity import MIN_SEPARABILITY, change_map

        self.check_dependencies()
        model_path, meta = self.any_model(parameters, context)
        first = self.layer_inputs(parameters, context)
        second = self.period_two(parameters, context, first)
        output = self.output_path(parameters, self.OUTPUT, context)
        mask = self.output_path(parameters, self.CHANGE_MASK, context) or None
        emb = []
        for k, given in enumerate((first, second)):
            matched = self.matched_inputs(meta, given, parameters, context)
            emb.append(self.embeddings_to_temp(model_path, matched, parameters, context,
                                               feedback, (0.4 * k, 0.4 * (k + 1)),
                                               f"period {k + 1}: "))
        threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        result = self.engine_call(change_map, emb[0], emb[1], output, mask, threshold,
                                  progress=lambda f: feedback.setProgress(80 + 20 * f),
                                  is_cancelled=feedback.isCanceled)
        if result["threshold"] is not None:
            feedback.pushInfo(f"threshold {result['threshold']:.4f}"
                              f"{' (Otsu)' if not threshold else ''}: "
                              f"{100 * result['changed_fraction']:.1f} % of valid places changed")
        eta = result.get("separability")
        if eta is not None and eta < MIN_SEPARABILITY:
            feedback.reportError(
                f"Warning: the distances form no two clear groups (Otsu separability {eta:.2f}; "
                f"a single normal distribution gives 0.64, clear change/no-change above "
                f"{MIN_SEPARABILITY}): the automatic threshold splits one group, so the change "
                "mask is not a change map. Look at the distance raster and set THRESHOLD.",
                fatalError=False)
        style_ramp_on_load(context, output, "Magma", 0.0, 1.0)
        results = {self.OUTPUT: result["distance"], self.THRESHOLD_USED: result["threshold"],
                   self.CHANGED_FRACTION: result["changed_fraction"]}
        if mask:
            results[self.CHANGE_MASK] = result["mask"]
        return results
