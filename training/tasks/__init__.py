"""LightningModules: pretraining, segmentation and classification (probe or fine-tune)."""
from .base import MaestroTask, load_pretrained, save_weights
from .pretrain import PretrainTask
from .supervised import ClassificationTask, SegmentationTask

__all__ = ["MaestroTask", "load_pretrained", "save_weights", "PretrainTask", "SegmentationTask", "ClassificationTask"]
