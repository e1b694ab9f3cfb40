"""One module per Processing algorithm; ALGORITHMS is what the provider registers."""
from .accuracy_assessment import AccuracyAssessmentAlgorithm
from .batch_segment import BatchSegmentAlgorithm
from .change import ChangeAlgorithm
from .classify import ClassifyAlgorithm
from .embed import EmbedAlgorithm
from .model_info import ModelInfoAlgorithm
from .segment import SegmentAlgorithm
from .similarity import SimilarityAlgorithm
from .train_classes import TrainClassesAlgorithm

ALGORITHMS = [SegmentAlgorithm, ClassifyAlgorithm, EmbedAlgorithm, ModelInfoAlgorithm]
ALGORITHMS.append(BatchSegmentAlgorithm)  # maestro:batch_segment (engine/batch, Dask)
ALGORITHMS.append(AccuracyAssessmentAlgorithm)  # maestro:accuracy_assessment (issue 13)
ALGORITHMS.append(TrainClassesAlgorithm)  # maestro:train_classes (issue 13)
ALGORITHMS.append(SimilarityAlgorithm)  # maestro:similarity (issue 13)
ALGORITHMS.append(ChangeAlgorithm)  # maestro:change (issue 13)
