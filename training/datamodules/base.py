"""LightningDataModule base: loaders of batch dicts, plus what the exporter needs to know of
the data (modalities, scaling, classes, provenance)."""
from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from ..datasets.base import ModalityInfo
from ..datasets.collate import collate


class MaestroDataModule(pl.LightningDataModule):
    """Subclasses implement :meth:`make_dataset`.

    Args:
        batch_size: items per device and step (official default 32).
        num_workers: DataLoader worker processes.
        pretrain: the training set is used for pretraining (it then also holds the validation
            split where the dataset allows, official ``val_pretrain=True``).
    """

    #: Text for the contract's ``provenance.training_data`` and ``licence``.
    training_data = "unknown"
    licence = "unknown"

    def __init__(self, batch_size: int = 32, num_workers: int = 0, pretrain: bool = False):
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pretrain = pretrain
        #: The model's patch per modality (set by :meth:`use_model_patches`): datasets then
        #: yield token masks [T, L] with partial tokens filled (contract version 2).
        self.patch_px: dict[str, int] | None = None
        self._sets: dict[str, Dataset] = {}

    def use_model_patches(self, patch_px: dict[str, int]) -> None:
        """Make the datasets yield the token masks of a model with these patch sizes
        (engine.preprocessing.tokens; what the engine feeds a version-2 model)."""
        self.patch_px = dict(patch_px)
        self._sets.clear()

    def make_dataset(self, stage: str, train: bool) -> Dataset:
        """The dataset of ``stage`` (``train``, ``val``, ``test``)."""
        raise NotImplementedError

    def dataset(self, stage: str) -> Dataset:
        if stage not in self._sets:
            self._sets[stage] = self.make_dataset(stage, train=stage == "train")
        return self._sets[stage]

    def _loader(self, stage: str) -> DataLoader:
        train = stage == "train"
        return DataLoader(self.dataset(stage), batch_size=self.batch_size, shuffle=train,
                          drop_last=train and len(self.dataset(stage)) > self.batch_size,
                          num_workers=self.num_workers, collate_fn=collate,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    # ----------------------------------------------------------- export side
    def info(self) -> list[ModalityInfo]:
        """Input modalities as the items hold them."""
        return self.dataset("val").info()

    def classes(self) -> list[dict]:
        """``[{id, name, color}]`` of the target classes ([] when there is no target)."""
        return self.dataset("val").classes()
