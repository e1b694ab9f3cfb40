"""One DataModule per dataset layout (see training/datasets/)."""
from __future__ import annotations

from ..datasets.flair import FlairHub
from ..datasets.geotiff_stack import GeoTiffStack
from ..datasets.pastis import PastisHD
from ..datasets.treesatai import TreeSatAITS
from .base import MaestroDataModule


class CsvSplitDataModule(MaestroDataModule):
    """A dataset whose splits are CSV files under ``root``, with a modality selection, the
    number of dates per modality and a cloud-mask threshold (TreeSatAI-TS, FLAIR-HUB)."""

    def __init__(self, root: str, modalities: list[str] | None = None,
                 num_dates: dict[str, int] | None = None, mask_threshold: float = 0.0,
                 batch_size: int = 32, num_workers: int = 0, pretrain: bool = False):
        super().__init__(batch_size, num_workers, pretrain)
        self.root, self.modalities, self.num_dates = root, modalities, num_dates
        self.mask_threshold = mask_threshold


class TreeSatAIDataModule(CsvSplitDataModule):
    """TreeSatAI-TS (multilabel, 15 genera). Splits ``train.csv``, ``val.csv``, ``test.csv``."""

    training_data = "TreeSatAI-TS (Ahlswede et al. 2023)"
    licence = "CC-BY-4.0"

    def make_dataset(self, stage, train):
        split = ["train", "val"] if (stage == "train" and self.pretrain) else stage
        return TreeSatAITS(self.root, split, self.modalities, self.num_dates, train,
                           self.mask_threshold, patch_px=self.patch_px)


class PastisHDDataModule(MaestroDataModule):
    """PASTIS-HD (semantic segmentation, 19 classes). Either split CSVs (``fold`` selects
    ``{split}_fold_k.csv``) or metadata folds per stage (``folds: {train: [1,2,3], ...}``)."""

    training_data = "PASTIS-HD (Garnot et al. 2021; Astruc et al. 2024)"
    licence = "CC-BY-4.0"

    def __init__(self, root: str, folds: dict[str, list[int]] | None = None,
                 fold: int | None = None, modalities: list[str] | None = None,
                 crop_m: int = 160, repeats: int = 8, num_dates: dict[str, int] | None = None,
                 batch_size: int = 32, num_workers: int = 0, pretrain: bool = False):
        super().__init__(batch_size, num_workers, pretrain)
        self.root, self.folds, self.fold = root, folds, fold
        self.modalities, self.crop_m, self.repeats = modalities, crop_m, repeats
        self.num_dates = num_dates

    def make_dataset(self, stage, train):
        folds = None
        if self.folds is not None:
            folds = list(self.folds[stage])
            if stage == "train" and self.pretrain:
                folds += list(self.folds.get("val", []))
        return PastisHD(self.root, stage, folds, self.fold, self.modalities, self.crop_m,
                        self.repeats, self.num_dates, train, patch_px=self.patch_px)


class FlairHubDataModule(CsvSplitDataModule):
    """FLAIR-HUB (COSIA land cover, 15 classes). Splits ``train.csv``, ``val.csv``,
    ``test.csv``."""

    training_data = "FLAIR-HUB (IGN 2025)"
    licence = "Etalab-2.0"

    def make_dataset(self, stage, train):
        return FlairHub(self.root, stage, self.modalities, self.num_dates, train,
                        self.mask_threshold, patch_px=self.patch_px)


class GeoTiffStackDataModule(MaestroDataModule):
    """GeoTIFF time stacks with a spatial split: one rectangular region of the reference
    raster per stage (``regions: {train: {cols: [0, 64]}, val: {cols: [64, 100]}}``; test
    defaults to val)."""

    def __init__(self, root: str, modalities: list[dict], reference: str, tile_px: int,
                 regions: dict[str, dict] | None = None, labels: str | None = None,
                 classes: list[dict] | None = None, samples_per_epoch: int = 64,
                 stride: int | None = None, training_data: str = "GeoTIFF stack",
                 licence: str = "unknown", batch_size: int = 32, num_workers: int = 0,
                 pretrain: bool = False):
        super().__init__(batch_size, num_workers, pretrain)
        self.root, self.modalities, self.reference = root, modalities, reference
        self.tile_px, self.regions, self.labels = tile_px, regions or {}, labels
        self.class_list, self.samples_per_epoch, self.stride = classes, samples_per_epoch, stride
        self.training_data, self.licence = training_data, licence

    def make_dataset(self, stage, train):
        # test falls back to the val region; a missing region is the whole raster.
        region = self.regions.get(stage, self.regions.get("val") if stage == "test" else None)
        return GeoTiffStack(self.root, self.modalities, self.reference, self.tile_px,
                            self.labels, self.class_list, region, train, self.samples_per_epoch,
                            self.stride, patch_px=self.patch_px)
