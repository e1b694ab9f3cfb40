"""Fixed position and date encodings against direct numpy computations of the official
formulas (facts 2.4)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.models.encodings import date_encoding, position_encoding, sincos_2d


def _numpy_sincos(grid, dim):
    n = (dim - 8) // 4
    omega = 1.0 / 10000 ** (np.arange(n) / (n - 1))
    y, x = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    parts = [np.sin(x[..., None] * omega), np.cos(x[..., None] * omega),
             np.sin(y[..., None] * omega), np.cos(y[..., None] * omega),
             np.zeros((grid, grid, 8))]
    return np.concatenate(parts, axis=-1)


def test_sincos_uses_n_minus_1_and_leaves_the_date_channels_empty():
    enc = sincos_2d(12, 32).numpy()
    np.testing.assert_allclose(enc, _numpy_sincos(12, 32), atol=1e-6)
    # last frequency is exactly 1/10000 (n - 1 in the exponent's denominator)
    assert np.isclose(enc[0, 1, 5], np.sin(1e-4), atol=1e-9)


def test_block_average_to_a_divisor_grid():
    ref = _numpy_sincos(8, 24)
    got = position_encoding(8, 2, 24).numpy()               # [4, 24]
    want = ref.reshape(2, 4, 2, 4, 24).mean(axis=(1, 3)).reshape(4, 24)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # a grid equal to the reference grid keeps the encoding unchanged
    np.testing.assert_allclose(position_encoding(8, 8, 24).numpy(), ref.reshape(64, 24),
                               atol=1e-6)


def test_non_divisible_grid_is_resized_bilinearly_first():
    # 10 is not a multiple of 4: resize to 4 * round(10 / 4) = 8 then average 2 x 2 blocks.
    ref = torch.from_numpy(_numpy_sincos(10, 24)).float().permute(2, 0, 1)[None]
    resized = F.interpolate(ref, size=(8, 8), mode="bilinear", align_corners=False)[0]
    want = resized.reshape(24, 4, 2, 4, 2).mean(dim=(2, 4)).reshape(24, 16).T
    torch.testing.assert_close(position_encoding(10, 4, 24), want, atol=1e-6, rtol=0)


def test_date_encoding_channels():
    dates = torch.tensor([[[2021, 32, 6], [2022, 1, 0]]], dtype=torch.int32)
    ref = torch.tensor([[2020, 183, 0]], dtype=torch.int32)
    enc = date_encoding(dates, ref, 20).numpy()
    assert enc.shape == (1, 2, 20)
    assert np.all(enc[..., :12] == 0)
    for t, (year, doy) in enumerate([(2021, 32), (2022, 1)]):
        diff = (year + doy / 365.25) - (2020 + 183 / 365.25)
        # The hour channels are those of hour 0 whatever the hour (schema version 2).
        want = [diff] * 4 + [np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25),
                             0.0, 1.0]
        np.testing.assert_allclose(enc[0, t, 12:], want, atol=1e-5)


def test_the_hour_is_ignored():
    """Dates and reference dates that differ only by their hour encode identically."""
    gen = torch.Generator().manual_seed(0)
    doy = torch.randint(1, 366, (3, 4), generator=gen)
    year = torch.full_like(doy, 2020)
    base = torch.stack([year, doy, torch.zeros_like(doy)], dim=-1).int()
    hours = base.clone()
    hours[..., 2] = torch.randint(1, 24, (3, 4), generator=gen)
    ref = torch.tensor([[2020, 10, 0]] * 3, dtype=torch.int32)
    ref_h = ref.clone()
    ref_h[:, 2] = 13
    a = date_encoding(base, ref, 24)
    assert torch.equal(date_encoding(hours, ref_h, 24), a)
