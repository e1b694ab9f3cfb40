"""maestro:classify: one prediction per tile footprint from a classification model."""
from __future__ import annotations

from .inference import InferenceAlgorithm


class ClassifyAlgorithm(InferenceAlgorithm):
    TASK = "classification"
    OUTPUT_DESCRIPTION = "Tile classes"
    OUTPUT_HELP = ("GeoTIFF with one pixel per tile footprint (tiles side by side, no overlap). "
                   "Single-label model: 1 band uint8, the class id (255 = nodata), styled with "
                   "the model's classes. Multilabel model: one float32 band per class with its "
                   "score 0-1, band descriptions = class names.")
    TASK_HELP = ("<p>Scene classification: runs a MAESTRO classification model on every tile "
                 "of the reference modality's grid and writes one value per tile (for example "
                 "the tree species or land-cover classes present in each tile).</p>")

    def name(self):
        return "classify"

    def displayName(self):
        return "Tile classification"

    def processAlgorithm(self, parameters, context, feedback):
        report, meta, output = self.run_engine(parameters, context, feedback)
        self.style_output(context, output, meta)
        return self.base_results(report, output)
