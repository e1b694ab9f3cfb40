"""The tile grid on the reference raster.

Tiles are ``tile_px`` (the reference modality's) squares whose top-left corners sit at
multiples of ``stride`` from the reference raster's top-left pixel; one more tile is added
per axis, flush with the far edge (rounded up to the offset quantum), so that every pixel is
covered with as little padding as possible. A raster smaller than a tile gets one tile padded
with nodata. The grid depends only on the raster size and the options, so a run over a
sub-area (``bounds``) uses exactly the tiles of a whole-raster run that touch it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .contract import ModelMetadata
from .errors import InputError


def offset_quantum(meta: ModelMetadata, extra: int = 1) -> int:
    """Smallest tile offset (reference pixels) that is a whole number of pixels on every
    modality's model grid (and a multiple of ``extra``, e.g. the patch size).

    A modality with ``tile_px = t`` against a reference ``tile_px = T`` has ``t/T`` of its
    pixels per reference pixel; an offset ``k`` is whole on its grid when ``k * t / T`` is.
    """
    ref = meta.reference.tile_px
    quantum = extra
    for m in meta.modalities:
        den = Fraction(m.tile_px, ref).denominator
        quantum = quantum * den // math.gcd(quantum, den)
    return quantum


def _origins(size: int, tile: int, stride: int, quantum: int) -> list[int]:
    if size <= tile:
        return [0]
    origins = list(range(0, size - tile + 1, stride))
    last = math.ceil((size - tile) / quantum) * quantum  # flush with the edge, on the quantum
    if origins[-1] + tile < size:
        origins.append(last)
    return origins


@dataclass(frozen=True)
class TileGrid:
    """Tile origins (reference pixels) over a ``width`` x ``height`` reference raster.

    Attributes:
        tile_px: tile side, reference pixels.
        stride: distance between regular tile origins, reference pixels.
        rows, cols: origins of tile rows / columns, ascending.
    """

    tile_px: int
    stride: int
    width: int
    height: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def build(cls, width: int, height: int, tile_px: int, overlap_pct: float, quantum: int,
              no_overlap: bool = False) -> "TileGrid":
        """Grid with ``overlap_pct`` percent overlap; the stride is rounded down to a multiple
        of ``quantum`` (at least one quantum)."""
        if not 0 <= overlap_pct <= 75:
            raise InputError(f"tile overlap must be between 0 and 75 percent (got {overlap_pct})")
        overlap = 0 if no_overlap else round(tile_px * overlap_pct / 100.0)
        stride = max(quantum, (tile_px - overlap) // quantum * quantum)
        rows = tuple(_origins(height, tile_px, stride, quantum))
        cols = tuple(_origins(width, tile_px, stride, quantum))
        return cls(tile_px, stride, width, height, rows, cols)

    @property
    def padded_width(self) -> int:
        return self.cols[-1] + self.tile_px

    @property
    def padded_height(self) -> int:
        return self.rows[-1] + self.tile_px

    def tiles(self, row_range: tuple[int, int] | None = None,
              col_range: tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """(row, col) origins in row-major order of the tiles overlapping the half-open pixel
        ranges (default: all)."""
        r0, r1 = row_range or (0, self.height)
        c0, c1 = col_range or (0, self.width)
        return [(r, c) for r in self.rows if r < r1 and r + self.tile_px > r0
                for c in self.cols if c < c1 and c + self.tile_px > c0]
