"""LightningModules: pretraining, segmentation and classification (probe or fine-tune)."""
from .base import MaestroTask
from .pretrain import PretrainTask
from .supervised import ClassificationTask, SegmentationTask

__all__ = ["MaestroTask", "PretrainTask", "SegmentationTask", "ClassificationTask"]
