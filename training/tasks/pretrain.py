"""Masked-autoencoder pretraining (official: maestro/train/model.py, phase ``pretrain``)."""
from __future__ import annotations

import torch

from .base import MaestroTask


class PretrainTask(MaestroTask):
    """Pretraining with :meth:`Maestro.pretrain_loss` under MAESTRO's structured masking.

    Args:
        mask: ``MaskConfig`` fields (``ratio`` 0.75, ``p_modality``, ``p_date``,
            ``p_location`` 0.25 by default).
        base_lr: official pretraining base LR 3e-5; the schedule ends at max/1e7.
        val_seed: seed of the masks drawn in validation (the same masks every epoch, so the
            validation loss is comparable across epochs).
    """

    model_task = None

    def __init__(self, model: dict, mask: dict | None = None, base_lr: float = 3e-5,
                 final_factor: float = 1e7, val_seed: int = 0, **kwargs):
        super().__init__(model, base_lr=base_lr, final_factor=final_factor, **kwargs)
        from ..masking import MaskConfig

        self.mask_config = MaskConfig(**(mask or {}))
        self.set_trainable()

    def trainable_parameters(self):
        heads = {id(p) for p in self.model.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in heads]

    def training_step(self, batch, batch_idx):
        out = self.model.pretrain_loss(batch, mask=self.mask_config)
        bs = next(iter(batch.values())).shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        for k, v in out.items():
            if k.startswith("loss_"):
                self.log(f"train/{k}", v, batch_size=bs)
        return out["loss"]

    def _eval_step(self, batch, batch_idx, prefix):
        gen = torch.Generator(device="cpu").manual_seed(self.hparams.val_seed + batch_idx)
        out = self.model.pretrain_loss(batch, mask=self.mask_config, generator=gen)
        bs = next(iter(batch.values())).shape[0]
        self.log(f"{prefix}/loss", out["loss"], prog_bar=True, batch_size=bs, sync_dist=True)
        return out["loss"]

    def _keep_epoch_loss(self, prefix):
        # The epoch mean Lightning aggregated (goes into the checkpoint and the export).
        value = self.trainer.callback_metrics.get(f"{prefix}/loss")
        if value is not None:
            self.last_metrics[f"{prefix}/loss"] = float(value)

    def on_validation_epoch_end(self):
        self._keep_epoch_loss("val")

    def on_test_epoch_end(self):
        self._keep_epoch_loss("test")

    def validation_step(self, batch, batch_idx):
        return self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        return self._eval_step(batch, batch_idx, "test")
