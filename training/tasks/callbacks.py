"""Callbacks used by the tests and for reproducibility checks."""
from __future__ import annotations

import hashlib
import json
import os

import lightning.pytorch as pl


def state_hash(module) -> str:
    """sha256 of every tensor of ``module.state_dict()`` (name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = t.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes())
    return h.hexdigest()


class WeightHashCallback(pl.Callback):
    """At the end of fit, each process writes ``<folder>/rank<r>.json`` with the hash of the
    model's weights and the global step (DDP replicas must agree)."""

    def __init__(self, folder: str):
        self.folder = folder
        self.initial = None

    def on_fit_start(self, trainer, pl_module):
        self.initial = state_hash(pl_module.model)

    def on_fit_end(self, trainer, pl_module):
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"rank{trainer.global_rank}.json")
        with open(path, "w") as f:
            json.dump({"rank": trainer.global_rank, "world_size": trainer.world_size,
                       "global_step": trainer.global_step,
                       "initial_hash": self.initial, "hash": state_hash(pl_module.model)}, f)
