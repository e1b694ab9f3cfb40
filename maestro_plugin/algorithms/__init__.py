"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .batch_segment import BatchSegmentAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .segment import SegmentAlgorithm

ALGORITHMS = [SegmentAlgorithm, ClassifyAlgorithm, EmbedAlgorithm, ModelInfoAlgorithm]
ALGORITHMS.append(BatchSegmentAlgorithm)  # maestro:batch_segment (engine/batch, Dask)
from .build_stack import BuildStackAlgorithm  # noqa: E402
ALGORITHMS.append(BuildStackAlgorithm)  # maestro:build_stack (engine/sentinel2, Sentinel-2 products)
