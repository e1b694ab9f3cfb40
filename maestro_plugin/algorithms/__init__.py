"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .batch_segment import BatchSegmentAlgorithm
from .build_stack import BuildStackAlgorithm
from .class_names import ClassNamesAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .segment import SegmentAlgorithm

ALGORITHMS = [
    SegmentAlgorithm,       # maestro:segment
    ClassifyAlgorithm,      # maestro:classify
    EmbedAlgorithm,         # maestro:embed
    ModelInfoAlgorithm,     # maestro:model_info
    BatchSegmentAlgorithm,  # maestro:batch_segment (engine/batch, Dask)
    BuildStackAlgorithm,    # maestro:build_stack (engine/sentinel2, Sentinel-2 products)
    ClassNamesAlgorithm,    # maestro:class_names (graphical model's last step)
]
