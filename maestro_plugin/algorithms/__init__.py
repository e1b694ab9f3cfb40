"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .accuracy_assessment import AccuracyAssessmentAlgorithm
from .batch_segment import BatchSegmentAlgorithm
from .build_stack import BuildStackAlgorithm
from .change import ChangeAlgorithm
from .class_names import ClassNamesAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .quantize_model import QuantizeModelAlgorithm
from .segment import SegmentAlgorithm
from .similarity import SimilarityAlgorithm
from .train_classes import TrainClassesAlgorithm

ALGORITHMS = [
    SegmentAlgorithm,       # maestro:segment
    ClassifyAlgorithm,      # maestro:classify
    EmbedAlgorithm,         # maestro:embed
    ModelInfoAlgorithm,     # maestro:model_info
    BatchSegmentAlgorithm,  # maestro:batch_segment (engine/batch, Dask)
    BuildStackAlgorithm,    # maestro:build_stack (engine/sentinel2, Sentinel-2 products)
    ClassNamesAlgorithm,    # maestro:class_names (graphical model's last step)
    TrainClassesAlgorithm,        # maestro:train_classes (issue 13)
    SimilarityAlgorithm,          # maestro:similarity (issue 13)
    ChangeAlgorithm,              # maestro:change (issue 13)
    AccuracyAssessmentAlgorithm,  # maestro:accuracy_assessment (issue 13)
    QuantizeModelAlgorithm,       # maestro:quantize_model (engine/quantize.py)
]
