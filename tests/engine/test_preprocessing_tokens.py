"""engine.preprocessing.tokens and .scaling: pixel validity -> token mask, partial tokens
filled with their valid pixels' mean, contract version 1's zero fill."""
from __future__ import annotations

import numpy as np
import pytest

from engine.preprocessing.scaling import scale_pixels
from engine.preprocessing.tokens import fill_tokens, model_input, token_count, token_missing


def _raw(rng, dates=3, bands=4, size=8):
    return rng.uniform(100, 5000, size=(dates, bands, size, size)).astype(np.float32)


def test_token_mask_is_row_major_and_true_for_empty_patches():
    valid = np.ones((2, 8, 8), bool)
    valid[0, :4, 4:] = False          # token 1 of date 0 (top right) empty
    valid[1, 4:, :4] = False          # token 2 of date 1 (bottom left) empty
    valid[1, 7, 7] = False            # token 3 of date 1 has one nodata pixel: present
    assert token_missing(valid, 4).tolist() == [[False, True, False, False],
                                                [False, False, True, False]]
    assert token_count(32, 4) == 64
    with pytest.raises(ValueError, match="multiple"):
        token_count(30, 4)


def test_partial_token_gets_its_valid_mean_and_empty_token_the_fill():
    rng = np.random.default_rng(0)
    raw = _raw(rng)
    raw[0, :, 0:2, 0:3] = np.nan                    # 6 of 16 pixels of token 0, date 0
    raw[1, 2, 5, 6] = np.nan                        # one band missing = the pixel is nodata
    raw[2, :, 4:, 4:] = np.nan                      # token 3 of date 2: all nodata
    mean, std = [10.0, 0.0, 5.0, 1.0], [5000.0, 2.0, 3.0, 7.0]
    pixels, mask, valid = model_input(raw, "none", mean, std, 4, -7.0)
    assert pixels.dtype == np.float32 and pixels.flags.c_contiguous
    assert not np.isnan(pixels).any()
    assert mask.shape == (3, 4) and mask.tolist() == [[False] * 4, [False] * 4,
                                                      [False, False, False, True]]
    scaled = scale_pixels(raw.copy(), "none", mean, std)
    tok = scaled[0, :, 0:4, 0:4].reshape(4, -1)
    expected = np.nanmean(tok.astype(np.float64), axis=1).astype(np.float32)
    np.testing.assert_array_equal(pixels[0, :, 0, 0], expected)
    np.testing.assert_array_equal(pixels[0, :, 1, 2], expected)
    # the pixel missing one band gets the means of all its bands over the 15 others
    tok = scaled[1, :, 4:8, 4:8].reshape(4, -1).astype(np.float64)
    keep = np.ones(16, bool)
    keep[1 * 4 + 2] = False
    np.testing.assert_allclose(pixels[1, :, 5, 6], tok[:, keep].mean(axis=1), rtol=1e-6)
    assert (pixels[2, :, 4:, 4:] == -7.0).all()
    # valid pixels are only scaled
    ok = valid[:, None].repeat(4, 1)
    np.testing.assert_array_equal(pixels[ok], scaled[ok])
    assert valid.sum() == 3 * 64 - 6 - 1 - 16


def test_input_unchanged_and_independent_of_layout():
    rng = np.random.default_rng(1)
    raw = _raw(rng, size=16)
    raw[:, :, :3] = np.nan
    before = raw.copy()
    a = model_input(raw, "log", [0] * 4, [5.0] * 4, 4, 0.0)
    np.testing.assert_array_equal(raw, before)
    wide = np.concatenate([raw, raw], axis=-1)          # a strip: the tile is a view
    b = model_input(wide[..., 16:], "log", [0] * 4, [5.0] * 4, 4, 0.0)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def test_version1_zero_fill_and_date_mask():
    rng = np.random.default_rng(2)
    raw = _raw(rng)
    raw[0, :, :2, :2] = np.nan
    raw[1] = np.nan
    pixels, mask, valid = model_input(raw, "none", [0] * 4, [1.0] * 4, 4, 0.0,
                                      token_masks=False)
    assert mask.tolist() == [False, True, False]
    assert (pixels[0, :, :2, :2] == 0).all() and (pixels[1] == 0).all()
    np.testing.assert_array_equal(pixels[2], raw[2])


def test_fill_tokens_batch_axes():
    x = np.full((2, 3, 2, 4, 4), np.nan, np.float32)
    x[1, 2, :, 0, 0] = [1.0, 2.0]
    out, missing = fill_tokens(x, 2, 9.0)
    assert missing.shape == (2, 3, 4) and missing.sum() == 2 * 3 * 4 - 1
    assert (out[1, 2, 0, :2, :2] == 1.0).all() and (out[1, 2, 1, :2, :2] == 2.0).all()
    assert (out[0] == 9.0).all()


def test_the_package_imports_only_numpy():
    """engine.preprocessing is the contract layer shared with training: importing it pulls in
    no torch, onnxruntime, qgis, nor rasterio (imported inside the functions that read)."""
    import subprocess
    import sys

    code = ("import sys, engine.preprocessing.dates, engine.preprocessing.tokens, "
            "engine.preprocessing.scaling\n"
            "bad = [m for m in ('torch', 'onnxruntime', 'qgis', 'rasterio', 'osgeo') "
            "if m in sys.modules]\nassert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
