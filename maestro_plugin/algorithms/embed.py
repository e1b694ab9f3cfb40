"""maestro:embed: encoder features (embeddings) on the token grid from an embedding model."""
from __future__ import annotations

from engine.tasks import EMBEDDINGS_OUTPUT

from .base import DEFAULT_MODEL
from .inference import InferenceAlgorithm


class EmbedAlgorithm(InferenceAlgorithm):
    TASK = "embedding"
    GRAPH_OUTPUT = EMBEDDINGS_OUTPUT    # the encoder features of any contract-2 model
    OUTPUT_DESCRIPTION = "Embeddings"
    OUTPUT_HELP = ("float32 GeoTIFF on the token grid (pixel = reference pixel size x patch "
                   "size), one band per embedding dimension: features for clustering, "
                   "similarity search or your own classifier.")
    TASK_HELP = ("<p>Feature extraction: runs a MAESTRO model and writes its encoder "
                 "features per token (patch): an embedding model's output, or the "
                 "'embeddings' output every contract-2 segmentation or classification model "
                 "has (older models without it are refused with a message).</p>")

    def name(self):
        return "embed"

    def displayName(self):
        return "Embeddings (encoder features)"

    def model_metadata(self, parameters, context):
        """Any task: the engine writes the encoder features (RunOptions.output)."""
        path = self.parameterAsFile(parameters, self.MODEL, context) or DEFAULT_MODEL
        from engine.contract import read_model_metadata

        return path, self.engine_call(read_model_metadata, path)

    def processAlgorithm(self, parameters, context, feedback):
        report, meta, output = self.run_engine(parameters, context, feedback)
        self.style_output(context, output, meta)
        return self.base_results(report, output)
