"""Masked-autoencoder pretraining (official: maestro/train/model.py, phase ``pretrain``)."""
from __future__ import annotations

import torch

from .base import MaestroTask

#: Batch entry naming the view (``PretrainTask(views=...)``) a batch is shaped for.
VIEW_KEY = "view"


class PretrainTask(MaestroTask):
    """Pretraining with :meth:`Maestro.pretrain_loss` under MAESTRO's structured masking.

    Args:
        mask: ``MaskConfig`` fields (``ratio`` 0.75, ``p_modality``, ``p_date``,
            ``p_location`` 0.25 by default).
        base_lr: official pretraining base LR 3e-5; the schedule ends at max/1e7.
        val_seed: seed of the masks drawn in validation (the same masks every epoch, so the
            validation loss is comparable across epochs).
        mask_seed: seed of the training masks (rank r of a DDP run uses seed + r); None =
            drawn from torch's global RNG.
        views: other input shapes trained with the same weights, ``{view name: {modality:
            {ModalityConfig field: value}}}`` (e.g. ``{"treesatai": {"s2": {"tile_px": 4,
            "max_dates": 16}}}``): a batch whose ``"view"`` entry (:data:`VIEW_KEY`) names one
            goes through :func:`training.models.views.shared_view` of the model, which holds
            only the listed modalities and shares every weight (only the position-encoding
            buffers differ). Batches without that entry use the model itself.
    """

    model_task = None

    def __init__(self, model: dict, mask: dict | None = None, base_lr: float = 3e-5,
                 final_factor: float = 1e7, val_seed: int = 0, mask_seed: int | None = None,
                 views: dict[str, dict[str, dict]] | None = None, **kwargs):
        super().__init__(model, base_lr=base_lr, final_factor=final_factor, **kwargs)
        from ..masking import MaskConfig
        from ..models.views import shared_view

        self.mask_config = MaskConfig(**(mask or {}))
        self.set_trainable()
        # A plain dict: the views' modules are the model's own (not registered twice).
        self._views = {name: shared_view(self.model, mods) for name, mods in (views or {}).items()}
        self._mask_gen: torch.Generator | None = None

    def network(self, batch: dict) -> tuple[torch.nn.Module, dict]:
        """(the network for ``batch``: the model or the view its ``"view"`` entry names, the
        batch without that entry).

        Raises:
            KeyError: a view name not given to the constructor.
        """
        name = batch.get(VIEW_KEY)
        batch = {k: v for k, v in batch.items() if k != VIEW_KEY}
        if name is None:
            return self.model, batch
        if name not in self._views:
            raise KeyError(f"batch view {name!r} is not one of {sorted(self._views)}")
        return self._views[name].to(self.device), batch

    def mask_generator(self) -> torch.Generator | None:
        if self.hparams.mask_seed is None:
            return None
        if self._mask_gen is None:
            rank = self.global_rank if self._trainer is not None else 0
            self._mask_gen = torch.Generator().manual_seed(int(self.hparams.mask_seed) + rank)
        return self._mask_gen

    def trainable_parameters(self):
        heads = {id(p) for p in self.model.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in heads]

    def training_step(self, batch, batch_idx):
        net, batch = self.network(batch)
        out = net.pretrain_loss(batch, mask=self.mask_config, generator=self.mask_generator())
        bs = next(iter(batch.values())).shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        for k, v in out.items():
            if k.startswith("loss_"):
                self.log(f"train/{k}", v, batch_size=bs)
        return out["loss"]

    def _eval_step(self, batch, batch_idx, prefix):
        gen = torch.Generator(device="cpu").manual_seed(self.hparams.val_seed + batch_idx)
        net, batch = self.network(batch)
        out = net.pretrain_loss(batch, mask=self.mask_config, generator=gen)
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
