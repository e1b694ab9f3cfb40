"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .batch_segment import BatchSegmentAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .quantize_model import QuantizeModelAlgorithm
from .segment import SegmentAlgorithm

ALGORITHMS = [SegmentAlgorithm, ClassifyAlgorithm, EmbedAlgorithm, ModelInfoAlgorithm]
ALGORITHMS.append(BatchSegmentAlgorithm)  # maestro:batch_segment (engine/batch, Dask)
ALGORITHMS.append(QuantizeModelAlgorithm)  # maestro:quantize_model (engine/quantize.py)
