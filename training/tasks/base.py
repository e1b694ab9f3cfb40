"""Shared LightningModule machinery: model construction, pretrained weights, the official
optimiser and schedule, and the per-epoch EMA.

Optimiser (official: maestro/train/model.py::configure_optimizers, conf/opt.py): AdamW with
betas (0.9, 0.99) and weight decay 0.01; learning rate ``base_lr * sqrt(total_batch / 3)``
where total_batch = batch per device x gradient accumulation x devices x nodes; OneCycleLR
stepped per step with ``pct_start`` 0.2, ``div_factor`` 1000 (start at max/1000) and
``final_div_factor = final_factor / 1000`` (end at max/final_factor: 1e7 for pretraining and
probing, 2 for fine-tuning). Only the parameters that get gradients are handed to the
optimiser, so plain DDP (no unused-parameter search) works.

EMA (official: maestro/train/base.py): a copy of the model updated once per training epoch
with momentum ``1 - 1 / (0.2 * max_epochs)``; it is used for validation and test of
fine-tuning only.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn


def build_model(config: dict, **overrides) -> nn.Module:
    """A :class:`training.models.maestro.Maestro` from a MaestroConfig dict."""
    from ..models.config import MaestroConfig
    from ..models.maestro import Maestro

    import yaml

    # Command-line overrides of a dict (--model.init_args.model.depth=4) arrive as text.
    cfg = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in dict(config).items()}
    cfg.update(overrides)
    return Maestro(MaestroConfig(**cfg))


def load_pretrained(model: nn.Module, path: str, skip_prefixes: tuple[str, ...] = ("heads.",)
                    ) -> dict:
    """Load the ``model.*`` weights of a training checkpoint (ours) into ``model``.

    Keys under ``skip_prefixes`` (the pretraining run's heads) are not loaded; keys absent
    on either side are reported, never silently wrong; a shape mismatch is an error (as the
    official ``load_from_checkpoint(strict=False)``).

    Returns:
        ``{"loaded": n, "missing": [...], "unexpected": [...]}``.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt)
    src = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not src:
        raise ValueError(f"{path}: no 'model.*' weights in this checkpoint")
    own = model.state_dict()
    take = {}
    for k, v in src.items():
        if k.startswith(skip_prefixes) or k not in own:
            continue
        if own[k].shape != v.shape:
            raise ValueError(f"{path}: weight {k} has shape {tuple(v.shape)}, the model expects "
                             f"{tuple(own[k].shape)} (patch sizes and band counts must match)")
        take[k] = v
    model.load_state_dict(take, strict=False)
    missing = sorted(k for k in own if k not in take and not k.startswith(skip_prefixes))
    unexpected = sorted(k for k in src if k not in own)
    return {"loaded": len(take), "missing": missing, "unexpected": unexpected}


def save_weights(model: nn.Module, path: str, **extra) -> str:
    """Write ``model``'s weights as a checkpoint :func:`load_pretrained` reads (the
    ``state_dict`` of a task checkpoint: keys ``model.<name>``), plus ``extra`` entries.
    Written to ``<path>.part`` then renamed, so a stopped run leaves no half file.

    Returns:
        ``path``.
    """
    state = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, **extra}, path + ".part")
    import os

    os.replace(path + ".part", path)
    return path


def ema_momentum(max_epochs: int | None) -> float:
    """Per-epoch EMA momentum ``1 - 1 / (0.2 * max_epochs)``, at least 0 (official:
    maestro/train/base.py; 0.9 for 50 epochs, 0.95 for 100)."""
    epochs = max(int(max_epochs or 1), 1)
    return max(0.0, 1.0 - 1.0 / (0.2 * epochs))


class MaestroTask(pl.LightningModule):
    """Base of :class:`PretrainTask`, :class:`SegmentationTask`, :class:`ClassificationTask`.

    Args:
        model: MaestroConfig fields (``size``, ``modalities``, ``reference_modality``,
            ``grid_pos_enc``...; dims may be overridden for custom small models).
        base_lr: learning rate before the sqrt batch scaling.
        final_factor: the schedule ends at max_lr / final_factor.
        pct_start, div_factor, weight_decay, betas: OneCycleLR and AdamW settings.
        pretrained: checkpoint of a previous phase whose encoder weights are loaded
            (:func:`load_pretrained`; :func:`save_weights` writes one).
        pretrained_heads: load the checkpoint's ``heads.*`` too (a probe's head carried into
            fine-tuning); default False (a pretraining run's heads are never loaded).
        pretrained_strict: raise ``ValueError`` when a weight the model expects (other than
            the heads left aside) is absent from the checkpoint, or the checkpoint holds one
            the model lacks; default False (reported in ``pretrained_report``).
        use_ema: keep the per-epoch EMA of the model.
    """

    #: The task string handed to MaestroConfig (None = pretraining).
    model_task: str | None = None

    def __init__(self, model: dict, base_lr: float = 1e-5, final_factor: float = 1e7,
                 pct_start: float = 0.2, div_factor: float = 1000.0, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.99), pretrained: str | None = None,
                 pretrained_heads: bool = False, pretrained_strict: bool = False,
                 use_ema: bool = True, **model_overrides: Any):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model, task=self.model_task, **model_overrides)
        self.pretrained_report = None
        if pretrained:
            skip = () if pretrained_heads else ("heads.",)
            report = load_pretrained(self.model, pretrained, skip_prefixes=skip)
            if pretrained_strict and (report["missing"] or report["unexpected"]):
                raise ValueError(f"{pretrained}: the weights do not fit the model: missing "
                                 f"{report['missing']}, unexpected {report['unexpected']}")
            self.pretrained_report = report
        self.ema_model = None
        if use_ema:
            self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
        self.last_metrics: dict[str, float] = {}

    # ------------------------------------------------------------- parameters
    def trainable_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def set_trainable(self) -> None:
        """requires_grad only on :meth:`trainable_parameters`."""
        keep = {id(p) for p in self.trainable_parameters()}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in keep)

    # ------------------------------------------------------------- optimiser
    def total_batch(self) -> int:
        dm = getattr(self.trainer, "datamodule", None)
        per_device = getattr(dm, "batch_size", 1) if dm is not None else 1
        return int(per_device * self.trainer.accumulate_grad_batches * self.trainer.world_size)

    def max_lr(self) -> float:
        return self.hparams.base_lr * math.sqrt(self.total_batch() / 3)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        lr = self.max_lr()
        opt = torch.optim.AdamW(params, lr=lr, betas=tuple(self.hparams.betas),
                                weight_decay=self.hparams.weight_decay)
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=steps, pct_start=self.hparams.pct_start,
            div_factor=self.hparams.div_factor,
            final_div_factor=self.hparams.final_factor / self.hparams.div_factor,
            anneal_strategy="cos", cycle_momentum=False)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------- EMA
    def ema_momentum(self) -> float:
        return ema_momentum(self.trainer.max_epochs)

    def on_train_epoch_end(self) -> None:
        if self.ema_model is None:
            return
        m = self.ema_momentum()
        with torch.no_grad():
            for e, p in zip(self.ema_model.parameters(), self.model.parameters()):
                e.mul_(m).add_(p.detach(), alpha=1.0 - m)

    def eval_model(self) -> nn.Module:
        """The network evaluated (and exported): the EMA for fine-tuning, else the model."""
        return self.model

    # ------------------------------------------------------------- bookkeeping
    def log_metrics(self, prefix: str, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            if v.dim() == 0:
                self.log(f"{prefix}/{k}", v, sync_dist=True)
                self.last_metrics[f"{prefix}/{k}"] = float(v)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["maestro_metrics"] = dict(self.last_metrics)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.last_metrics = dict(checkpoint.get("maestro_metrics", {}))
