"""maestro:segment: a land-cover map (one class id per pixel) from a segmentation model."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterRasterDestination

from ..styling import style_on_load
from .inference import InferenceAlgorithm


class SegmentAlgorithm(InferenceAlgorithm):
    TASK = "segmentation"
    CONFIDENCE = "CONFIDENCE"
    OUTPUT_DESCRIPTION = "Land-cover map"
    OUTPUT_HELP = ("GeoTIFF (COG) on the reference modality's grid, 1 band uint8: the class id "
                   "of each pixel, 255 = nodata; colour table and class names from the model. "
                   "Loaded in QGIS it is styled with the model's class names and colours.")
    TASK_HELP = ("<p>Semantic segmentation: runs a MAESTRO segmentation model over the "
                 "rasters, tile by tile with overlap, and writes a land-cover map.</p>")

    def name(self):
        return "segment"

    def displayName(self):
        return "Land-cover map (segmentation)"

    def add_task_parameters(self):
        param = QgsProcessingParameterRasterDestination(
            self.CONFIDENCE, "Confidence (max class probability)", optional=True,
            createByDefault=False)
        param.setHelp("Optional float32 GeoTIFF on the same grid: the probability of the "
                      "chosen class (0-1), nodata where the map is nodata.")
        self.addParameter(param)

    def shortHelpString(self):
        return (super().shortHelpString()
                + "<p><b>CONFIDENCE</b>: optional probability of the chosen class (0-1).</p>")

    def processAlgorithm(self, parameters, context, feedback):
        confidence = self.output_path(parameters, self.CONFIDENCE, context) or None
        report, meta, output = self.run_engine(parameters, context, feedback,
                                               confidence_path=confidence)
        self.style_output(context, output, meta)
        results = self.base_results(report, output)
        if confidence:
            style_on_load(context, confidence, confidence=True)
            results[self.CONFIDENCE] = report.confidence_path or confidence
        return results
