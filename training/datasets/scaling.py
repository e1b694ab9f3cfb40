"""Constant input scaling per modality (MAESTRO has no z-score), as a dataset declares it.

``x' = f(x) / divisor`` with ``f`` the identity or ``log(max(x, 1e-10))`` (official:
maestro/dataset/dataset.py; S2 /5000 (PASTIS /10000), aerial and SPOT /255, S1 log then /5
(PASTIS /20 without log), DEM /1000). It is the contract scaling with ``mean = 0, std =
divisor``, applied by the engine's own function (:func:`engine.preprocessing.scaling.
scale_pixels`), so training and the engine feed the model bit-identical values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.preprocessing.scaling import scale_pixels


@dataclass(frozen=True)
class Scaling:
    """divisor: constant the (transformed) values are divided by; log: take the log first."""

    divisor: float = 1.0
    log: bool = False

    def __post_init__(self):
        if not self.divisor > 0:
            raise ValueError(f"scaling divisor must be > 0 (got {self.divisor})")

    @property
    def transform(self) -> str:
        return "log" if self.log else "none"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32 copy of ``x`` [..., C, H, W] scaled (NaN stays NaN)."""
        x = np.array(x, dtype=np.float32, copy=True)
        nb = x.shape[-3]
        return scale_pixels(x, self.transform, [0.0] * nb, [float(self.divisor)] * nb)

    def contract(self, nbands: int) -> dict:
        """The contract's ``scaling`` object for ``nbands`` bands."""
        return {"transform": self.transform, "mean": [0.0] * nbands,
                "std": [float(self.divisor)] * nbands}
