"""Constant input scaling per modality (MAESTRO has no z-score).

``x' = f(x) / divisor`` with ``f`` the identity or ``log(max(x, 1e-10))`` (official:
maestro/dataset/dataset.py; S2 /5000 (PASTIS /10000), aerial and SPOT /255, S1 log then /5
(PASTIS /20 without log), DEM /1000). The same values go into the ONNX contract's ``scaling``
as ``mean = 0, std = divisor`` so the engine feeds what the model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaling:
    """divisor: constant the (transformed) values are divided by; log: take the log first."""

    divisor: float = 1.0
    log: bool = False

    def __post_init__(self):
        if not self.divisor > 0:
            raise ValueError(f"scaling divisor must be > 0 (got {self.divisor})")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32 copy of ``x`` scaled."""
        x = np.asarray(x, dtype=np.float32)
        if self.log:
            with np.errstate(invalid="ignore"):
                x = np.log(np.maximum(x, np.float32(1e-10)))
        return (x / np.float32(self.divisor)).astype(np.float32, copy=False)

    def contract(self, nbands: int) -> dict:
        """The contract's ``scaling`` object for ``nbands`` bands."""
        return {"transform": "log" if self.log else "none", "mean": [0.0] * nbands,
                "std": [float(self.divisor)] * nbands}
