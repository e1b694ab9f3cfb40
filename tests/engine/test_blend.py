"""engine/blend.py: the weight window and the row-streamed weighted blend, against a
whole-array blend computed directly."""
from __future__ import annotations

import numpy as np
import pytest

from engine.blend import RowAccumulator, weight_window


def test_weight_window_is_smooth_positive_and_symmetric():
    w = weight_window(16)
    assert w.shape == (16, 16) and w.dtype == np.float32
    assert w.min() >= 1e-6 and w.max() <= 1.0
    assert w[8, 8] > 50 * w[0, 0] and w[8, 8] > w[0, 8]
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    assert weight_window(1).tolist() == [[1.0]]


@pytest.mark.parametrize("window", [((0, 40), (0, 36)), ((5, 29), (3, 30))])
def test_streamed_blend_equals_the_whole_array_blend(window):
    rng = np.random.default_rng(0)
    tile, stride, channels = 8, 6, 3
    (r0, r1), (c0, c1) = window
    origins = [(r, c) for r in range(0, 34, stride) for c in range(0, 30, stride)]
    tiles = [(r, c, rng.normal(size=(channels, tile, tile)).astype(np.float32),
              rng.random((tile, tile)) > 0.2) for r, c in origins]
    # whole-array blend (what the streamed one must reproduce)
    sums = np.zeros((channels, 48, 48))
    weights = np.zeros((48, 48))
    valid = np.zeros((48, 48), bool)
    w = weight_window(tile)
    for r, c, v, ok in tiles:
        sums[:, r:r + tile, c:c + tile] += v * w
        weights[r:r + tile, c:c + tile] += w
        valid[r:r + tile, c:c + tile] |= ok
    flushed = []

    def flush(row, s, wt, ok):
        flushed.append((row, s.copy(), wt.copy(), ok.copy()))

    acc = RowAccumulator(channels, (r0, r1), (c0, c1), tile, flush)
    for r, c, v, ok in tiles:                        # row-major, as the runner adds them
        acc.add(v, ok, r, c)
    acc.finish()
    rows = [f[0] for f in flushed]
    assert rows == sorted(rows) and rows[0] == 0      # top to bottom, each row once
    got_s = np.concatenate([f[1] for f in flushed], axis=1)
    got_w = np.concatenate([f[2] for f in flushed], axis=0)
    got_ok = np.concatenate([f[3] for f in flushed], axis=0)
    assert got_w.shape == (r1 - r0, c1 - c0)
    np.testing.assert_allclose(got_s, sums[:, r0:r1, c0:c1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_w, weights[r0:r1, c0:c1], rtol=1e-6)
    np.testing.assert_array_equal(got_ok, valid[r0:r1, c0:c1])
