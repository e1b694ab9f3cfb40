"""The recipes' batches as a Lightning data module: a fixed number of steps, each a batch
drawn from one source in turn with a seeded numpy generator (the data fit in memory, so
batches are cut on the fly in the main process; no workers).

A source is any object with ``batch(size, rng) -> dict`` (``training.recipes.pretrain_data``).
"""
from __future__ import annotations

import re

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..tasks.pretrain import VIEW_KEY


class StepBatches(IterableDataset):
    """``steps`` batches of ``batch_size`` items; step ``i`` comes from source
    ``order[i % len(order)]``. Batches of a source named in ``views`` carry
    ``{"view": name}`` (``training.tasks.PretrainTask(views=...)``).

    Every iteration starts again from ``seed``: the same batches in the same order.
    """

    def __init__(self, sources: dict, batch_size: int, steps: int, seed: int,
                 views: tuple[str, ...] = ()):
        if not sources:
            raise ValueError("no batch source")
        self.sources, self.batch_size, self.steps, self.seed = sources, batch_size, steps, seed
        self.order, self.views = list(sources), set(views)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        for step in range(self.steps):
            name = self.order[step % len(self.order)]
            batch = self.sources[name].batch(self.batch_size, rng)
            if name in self.views:
                batch[VIEW_KEY] = name
            yield batch


class RecipeData(pl.LightningDataModule):
    """Training batches only (the recipes score held-out pixels themselves). ``batch_size``
    is what ``MaestroTask.max_lr`` scales the learning rate by."""

    def __init__(self, batches: StepBatches):
        super().__init__()
        self.batches = batches
        self.batch_size = batches.batch_size

    def train_dataloader(self):
        # batch_size=None: the dataset yields whole batches. The loader's own generator keeps
        # torch's global RNG untouched (TreeSatAI's date choice draws from it).
        return DataLoader(self.batches, batch_size=None, num_workers=0,
                          generator=torch.Generator().manual_seed(self.batches.seed))


class LossHistory(pl.Callback):
    """Keeps ``(source, loss)`` per training step (sources in ``order``, in turn) and logs a
    line every ``every`` steps and at the last one (``log``: a print-like function)."""

    def __init__(self, label: str, order: list[str], log=print, every: int = 100):
        self.label, self.order, self.say, self.every = label, order, log, every
        self.history: list[tuple[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        name = self.order[len(self.history) % len(self.order)]
        self.history.append((name, float(loss)))
        total = trainer.max_steps
        step = len(self.history)
        if (step - 1) % self.every == 0 or step == total:
            recent = [v for _, v in self.history[-20:]]
            self.say(f"{self.label} step {step}/{total} ({name}) loss {self.history[-1][1]:.4f} "
                     f"mean(last 20) {np.mean(recent):.4f}")


def fit(task: pl.LightningModule, batches: StepBatches, label: str, log=print,
        clip: float | None = 1.0) -> list[tuple[str, float]]:
    """Train ``task`` on ``batches`` (one epoch = every step) on the CPU, deterministic
    algorithms, gradient norm clipped to ``clip`` (None: no clipping), no logger, checkpoint
    or progress bar. Returns the per-step ``(source, loss)`` history."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    history = LossHistory(label, batches.order, log)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, max_steps=batches.steps,
                         gradient_clip_val=clip, deterministic=True, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, callbacks=[history])
    with warnings.catch_warnings():
        # Expected here: no validation loader, one process, an IterableDataset with a length.
        for text in ("You defined a `validation_step`", "Your `IterableDataset` has `__len__`",
                     "The 'train_dataloader' does not have many workers",
                     "`isinstance(treespec, LeafSpec)` is deprecated"):
            warnings.filterwarnings("ignore", message=".*" + re.escape(text))
        trainer.fit(task, datamodule=RecipeData(batches))
    return history.history
