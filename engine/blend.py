"""Blending overlapping tile outputs with a smooth weight window, streamed by rows.

Each tile's output (logits, scores or embeddings on the output grid) is multiplied by a
separable weight window that is largest in the tile centre and small (never zero) at its
edges, and summed; the blended value is ``sum(w * y) / sum(w)``. Only the rows that tiles
still being processed can touch are kept in memory: once tiles of a later tile row start,
the rows above them are final and handed to a callback (then written and dropped).
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def weight_window(size: int) -> np.ndarray:
    """float32 [size, size]: ``sin^2`` window (Hann on pixel centres), floored at 1e-3 so
    that pixels seen by one tile only (raster edges) keep a defined value."""
    if size == 1:
        return np.ones((1, 1), dtype=np.float32)
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    w1 = np.maximum(np.sin(np.pi * centres) ** 2, 1e-3)
    return np.outer(w1, w1).astype(np.float32)


FlushFn = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


class RowAccumulator:
    """Weighted sums over a window of the output grid, ``tile`` rows at a time.

    Args:
        channels: values per output pixel (classes or embedding size).
        rows, cols: half-open output-grid ranges of the window written to disk.
        tile: tile side on the output grid.
        flush: ``flush(row_offset_in_window, sums [C, h, w], weights [h, w], valid [h, w])``
            for rows that no later tile can change, top to bottom.
    """

    def __init__(self, channels: int, rows: tuple[int, int], cols: tuple[int, int], tile: int,
                 flush: FlushFn):
        self.rows, self.cols, self.tile, self._flush = rows, cols, tile, flush
        width = cols[1] - cols[0]
        self.sums = np.zeros((channels, tile, width), dtype=np.float32)
        self.weights = np.zeros((tile, width), dtype=np.float32)
        self.valid = np.zeros((tile, width), dtype=bool)
        self.top = rows[0]          # output row held in buffer row 0
        self.window = weight_window(tile)

    def advance(self, row: int) -> None:
        """Declare that no tile starting above output row ``row`` will come: flush rows < row."""
        target = min(row, self.rows[1])
        while self.top < target:
            n = min(target - self.top, self.tile)
            self._flush(self.top - self.rows[0], self.sums[:, :n], self.weights[:n],
                        self.valid[:n])
            keep = self.tile - n
            self.sums[:, :keep] = self.sums[:, n:]
            self.weights[:keep] = self.weights[n:]
            self.valid[:keep] = self.valid[n:]
            self.sums[:, keep:] = 0
            self.weights[keep:] = 0
            self.valid[keep:] = False
            self.top += n

    def add(self, values: np.ndarray, valid: np.ndarray, row: int, col: int) -> None:
        """Add one tile's output.

        Args:
            values: float32 [C, tile, tile] on the output grid.
            valid: bool [tile, tile]: output pixels with data in every required input.
            row, col: the tile's top-left on the output grid.
        """
        self.advance(row)
        t = self.tile
        r0, r1 = max(row, self.top, self.rows[0]), min(row + t, self.rows[1])
        c0, c1 = max(col, self.cols[0]), min(col + t, self.cols[1])
        if r1 <= r0 or c1 <= c0:
            return
        tr, tc = slice(r0 - row, r1 - row), slice(c0 - col, c1 - col)
        br, bc = slice(r0 - self.top, r1 - self.top), slice(c0 - self.cols[0], c1 - self.cols[0])
        w = self.window[tr, tc]
        self.sums[:, br, bc] += values[:, tr, tc] * w
        self.weights[br, bc] += w
        self.valid[br, bc] |= valid[tr, tc]

    def finish(self) -> None:
        """Flush every remaining row of the window."""
        self.advance(self.rows[1])
