"""Fine-tuning and linear probing (official: maestro/train/base.py, phases ``probe`` and
``finetune``) for segmentation and classification."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..datasets.base import IGNORE_INDEX
from ..metrics import MonoLabelMetric, MultiLabelMetric
from .base import MaestroTask


class _SupervisedTask(MaestroTask):
    """Args (besides :class:`MaestroTask`'s):
        freeze_encoder: linear probing (only the head learns; encoder outputs carry no
            gradient). Default False = full fine-tuning (encoder + head).
        base_lr: official 1e-5 for both probe and finetune.
        final_factor: official 1e7 for probing, 2 for fine-tuning (default: chosen by
            ``freeze_encoder``).
        token_dropout: probability, per training sample and modality, of marking a random
            pattern of its tokens missing (``training.masking.TokenDropout``: a rectangle in
            one date, a border frame, whole dates or scattered tokens; never all of them),
            so the head learns to predict from whatever is present; segmentation pixels left
            without data are ignored by the loss. 0 disables it. Validation and test batches
            are never changed.
        token_dropout_seed: seed of those draws (rank r of a DDP run uses seed + r).
        class_weights: per-class weights of the single-label cross-entropy (K floats; e.g.
            ``(n_k / mean n) ** -power`` to lift rare classes); None = unweighted. Not used
            by multilabel classification.
    """

    def __init__(self, model: dict, freeze_encoder: bool = False, base_lr: float = 1e-5,
                 final_factor: float | None = None, token_dropout: float = 0.5,
                 token_dropout_seed: int = 0, class_weights: list[float] | None = None,
                 **kwargs):
        from ..masking import TokenDropout

        if final_factor is None:
            final_factor = 1e7 if freeze_encoder else 2.0
        super().__init__(model, base_lr=base_lr, final_factor=final_factor, **kwargs)
        self.freeze_encoder = freeze_encoder
        self.token_dropout = TokenDropout(token_dropout)
        self._dropout_gen: torch.Generator | None = None
        self.set_trainable()
        weights = None
        if class_weights is not None:
            k = self.model.config.num_classes
            if len(class_weights) != k:
                raise ValueError(f"class_weights has {len(class_weights)} values for {k} classes")
            weights = torch.tensor([float(w) for w in class_weights], dtype=torch.float32)
        self.register_buffer("class_weights", weights)
        self.metrics = torch.nn.ModuleDict({s: self.make_metric() for s in ("val", "test")})

    def trainable_parameters(self):
        if self.freeze_encoder:
            return self.model.head_parameters()
        return self.model.encoder_parameters() + self.model.head_parameters()

    def eval_model(self):
        # EMA weights for fine-tuning val/test only, as officially.
        if self.ema_model is not None and not self.freeze_encoder:
            return self.ema_model
        return self.model

    def make_metric(self):
        raise NotImplementedError

    def loss(self, logits, target):
        raise NotImplementedError

    def drop_tokens(self, batch: dict) -> dict:
        """The training batch with random missing tokens (``token_dropout``), seeded."""
        from ..masking import apply_token_dropout

        if self.token_dropout.p <= 0:
            return batch
        if self._dropout_gen is None:
            rank = self.global_rank if self._trainer is not None else 0
            self._dropout_gen = torch.Generator().manual_seed(
                int(self.hparams.token_dropout_seed) + int(rank))
        return apply_token_dropout(self.model, batch, self.token_dropout, self._dropout_gen,
                                   IGNORE_INDEX)

    def training_step(self, batch, batch_idx):
        batch = self.drop_tokens(batch)
        logits = self.model(batch)
        loss = self.loss(logits, batch["target"])
        self.log("train/loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def _eval_step(self, batch, stage):
        logits = self.eval_model()(batch)
        loss = self.loss(logits, batch["target"])
        self.log(f"{stage}/loss", loss, batch_size=logits.shape[0], sync_dist=True)
        self.metrics[stage].update(logits.detach(), batch["target"])

    def _eval_end(self, stage):
        self.log_metrics(stage, self.metrics[stage].compute())
        self.metrics[stage].reset()

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self):
        self._eval_end("val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self):
        self._eval_end("test")


class SegmentationTask(_SupervisedTask):
    """Semantic segmentation: cross-entropy on pixels != -1; OA, mIoU and mean F1 over the
    classes present (official: maestro/train/metric.py MonoLabelMetric)."""

    model_task = "segmentation"

    def make_metric(self):
        return MonoLabelMetric(self.model.config.num_classes, IGNORE_INDEX)

    def loss(self, logits, target):
        return F.cross_entropy(logits, target, weight=self.class_weights,
                               ignore_index=IGNORE_INDEX)


class ClassificationTask(_SupervisedTask):
    """Tile classification: multilabel (BCE with logits, weighted F1) when the model config
    says ``multilabel``, else single-label (cross-entropy, OA/mIoU/mF1)."""

    model_task = "classification"

    @property
    def multilabel(self) -> bool:
        return bool(self.model.config.multilabel)

    def make_metric(self):
        n = self.model.config.num_classes
        return MultiLabelMetric(n) if self.multilabel else MonoLabelMetric(n, IGNORE_INDEX)

    def loss(self, logits, target):
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, target.float())
        return F.cross_entropy(logits, target.long(), weight=self.class_weights,
                               ignore_index=IGNORE_INDEX)
