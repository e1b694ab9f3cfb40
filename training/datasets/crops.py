"""Crop positions inside a fixed-size tile (PASTIS-HD, FLAIR-HUB).

A tile of ``total`` ground units is cut into crops of ``crop`` units. Evaluation (and the
item index in training when ``random`` is off) uses a ``repeats x repeats`` grid of crops
(official: GenericDataset.sample_gcd, ``start = i * size // repeats``); training draws a random
start. Positions are in units of the coarsest grid (gcd grid); each modality scales them by its
pixels per unit.
"""
from __future__ import annotations

import numpy as np


def crop_start(index: int, base_length: int, repeats: int, total: int, crop: int,
               rng: np.random.Generator | None) -> tuple[int, tuple[int, int]]:
    """(sample index, (row, col) start in gcd units)."""
    sample = index % base_length
    if rng is not None:
        r, c = rng.integers(0, total - crop + 1, size=2)
        return sample, (int(r), int(c))
    rep = index // base_length
    i, j = rep // repeats, rep % repeats
    return sample, (i * total // repeats, j * total // repeats)
