"""Date selection in partly cloudy bins: the official NaN-median over every date of the bin,
cloudy pixels set to NaN (official: maestro/dataset/dataset.py preprocess_raster)."""
from __future__ import annotations

import numpy as np
import pytest

from training.datasets.selection import cloudy_dates, cloudy_pixels, select_dates


def _bin():
    """One bin of 3 dates, 1 band, 2 x 2 px: A clear at 0, B clear at 10, C at 10 with one
    cloudy pixel (value 1000)."""
    images = np.zeros((3, 1, 2, 2), np.float32)
    images[1] = 10.0
    images[2] = 10.0
    images[2, 0, 0, 0] = 1000.0
    clouds = np.zeros((3, 2, 2), bool)
    clouds[2, 0, 0] = True
    return images, clouds


def test_partly_cloudy_bin_uses_the_nan_median_over_all_its_dates():
    images, clouds = _bin()
    # Official: median per pixel over A, B and C's clear pixels = 5 at the cloudy pixel, 10
    # elsewhere; A is 8.75 away, B 1.25: B. (The median of the clear dates alone, A and B,
    # is 5 everywhere: a tie, A.) C is never picked: it has a cloudy pixel.
    assert select_dates(images, 1, None, clouds).tolist() == [1]
    assert select_dates(images, 1, None, clouds.reshape(3, -1).any(1)).tolist() == [0]
    # Training: a random date among the clear ones only.
    rng = np.random.default_rng(0)
    assert {int(select_dates(images, 1, rng, clouds)[0]) for _ in range(40)} == {0, 1}


def test_all_cloudy_bin_ignores_the_clouds_and_nan_dates_are_not_picked():
    images, clouds = _bin()
    every = clouds.copy()
    every[:, 1, 1] = True                      # every date cloudy somewhere: clouds ignored
    # median over the raw values: 10 everywhere -> B (0 away) wins.
    assert select_dates(images, 1, None, every).tolist() == [1]
    with_nan = images.copy()
    with_nan[1, 0, 1, 1] = np.nan              # B incomplete: A is the only complete date
    assert select_dates(with_nan, 1, None, clouds).tolist() == [0]


def test_cloud_mask_helpers_and_shape_check():
    mask = np.zeros((3, 2, 2, 2))              # [T, M, H, W]
    mask[1, 1, 0, 1] = 50
    assert cloudy_pixels(mask, 20).shape == (3, 2, 2)
    assert cloudy_pixels(mask, 20)[1, 0, 1] and cloudy_pixels(mask, 20).sum() == 1
    assert cloudy_dates(mask, 20).tolist() == [False, True, False]
    images, _ = _bin()
    with pytest.raises(ValueError, match="cloudy must be"):
        select_dates(np.concatenate([images, images]), 2, None, np.zeros((6, 3, 3), bool))
