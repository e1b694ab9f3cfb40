"""maestro:embed: encoder features (embeddings) on the token grid from an embedding model."""
from __future__ import annotations

from .inference import InferenceAlgorithm


class EmbedAlgorithm(InferenceAlgorithm):
    TASK = "embedding"
    OUTPUT_DESCRIPTION = "Embeddings"
    OUTPUT_HELP = ("float32 GeoTIFF on the token grid (pixel = reference pixel size x patch "
                   "size), one band per embedding dimension: features for clustering, "
                   "similarity search or your own classifier.")
    TASK_HELP = ("<p>Feature extraction: runs a MAESTRO encoder exported as an embedding "
                 "model and writes its features per token (patch).</p>")

    def name(self):
        return "embed"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return "Embeddings (encoder features)"

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        report, _meta, output = self.run_engine(parameters, context, feedback)
        return self.base_results(report, output)
