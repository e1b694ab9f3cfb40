"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .batch_segment import BatchSegmentAlgorithm
from .class_names import ClassNamesAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .segment import SegmentAlgorithm

ALGORITHMS = [SegmentAlgorithm, ClassifyAlgorithm, EmbedAlgorithm, ModelInfoAlgorithm]
ALGORITHMS.append(BatchSegmentAlgorithm)  # maestro:batch_segment (engine/batch, Dask)
ALGORITHMS.append(ClassNamesAlgorithm)  # maestro:class_names (graphical model's last step)
