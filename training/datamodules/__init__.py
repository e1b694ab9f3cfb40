"""LightningDataModules for the datasets of training/datasets/."""
from .base import MaestroDataModule
from .datasets import (FlairHubDataModule, GeoTiffStackDataModule, PastisHDDataModule,
                       TreeSatAIDataModule)

__all__ = ["MaestroDataModule", "TreeSatAIDataModule", "PastisHDDataModule",
           "FlairHubDataModule", "GeoTiffStackDataModule"]
