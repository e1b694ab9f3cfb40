"""Per-pixel features at labelled pixels of the reference grid.

Three kinds, all sampled at the pixels of a :class:`PixelGrid` (the reference modality's grid
of a run, recovered from the embeddings raster the engine wrote):

- :func:`sample_embeddings`: the encoder features of the token grid, interpolated bilinearly
  to pixel centres (half-pixel centres, edges clamped), as ONNX ``Resize`` (mode ``linear``,
  ``half_pixel``) does inside the merged model (engine/classes/head.py);
- :func:`reference_statistics`: the reference modality's scaled bands, mean and standard
  deviation over the dates where the pixel is valid (what the merged model computes from its
  input tensor over the dates present);
- :func:`raw_pixel_values`: every band of every date of every modality as read (resampled
  bilinearly to the reference grid for coarser modalities), the random forest's inputs.

numpy + rasterio; the engine's own readers and scaling (engine.stack, engine.align,
engine.preprocessing.scaling).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class PixelGrid:
    """A window of the reference pixel grid.

    Attributes:
        crs, transform: rasterio CRS and Affine of pixel (0, 0) of the window.
        width, height: pixels.
        patch_px: reference pixels per token (the embeddings raster's pixel = patch_px px).
    """

    crs: object
    transform: object
    width: int
    height: int
    patch_px: int

    @classmethod
    def from_embeddings(cls, path: str, patch_px: int) -> "PixelGrid":
        """The pixel grid under an embeddings raster written by the engine (token grid)."""
        import rasterio
        from affine import Affine

        with rasterio.open(path) as src:
            return cls(src.crs, src.transform * Affine.scale(1.0 / patch_px),
                       src.width * patch_px, src.height * patch_px, patch_px)


def read_embeddings(path: str) -> np.ndarray:
    """float32 [D, h, w] of an embeddings raster (NaN = nodata)."""
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(out_dtype="float32")
        if src.nodata is not None and not np.isnan(src.nodata):
            data[data == src.nodata] = np.nan
    return data


def _linear_taps(coord: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weight of the upper neighbour of each ``coord`` (in source pixels, centre
    of pixel i at i + 0.5), clamped at the edges as ONNX Resize linear / half_pixel does."""
    x = np.clip(coord - 0.5, 0.0, size - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, (x - lo).astype(np.float32)


def sample_embeddings(emb: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_px: int
                      ) -> np.ndarray:
    """float32 [N, D]: ``emb`` [D, h, w] interpolated at pixel (rows, cols) of the grid
    ``patch_px`` times finer. Where a neighbour token is nodata (raster edges) the pixel's
    own token is used; NaN where that one is nodata too."""
    d, h, w = emb.shape
    r0, r1, fr = _linear_taps((rows + 0.5) / patch_px, h)
    c0, c1, fc = _linear_taps((cols + 0.5) / patch_px, w)
    top = emb[:, r0, c0] * (1 - fc) + emb[:, r0, c1] * fc
    bottom = emb[:, r1, c0] * (1 - fc) + emb[:, r1, c1] * fc
    out = top * (1 - fr) + bottom * fr
    bad = np.isnan(out).any(axis=0)
    if bad.any():
        own = emb[:, np.minimum(rows[bad] // patch_px, h - 1), np.minimum(cols[bad] // patch_px, w - 1)]
        out[:, bad] = own
    return out.T.astype(np.float32)


def upsample_embeddings(emb: np.ndarray, patch_px: int) -> np.ndarray:
    """float32 [D, h * p, w * p]: the whole raster interpolated as :func:`sample_embeddings`."""
    d, h, w = emb.shape
    rr, cc = np.meshgrid(np.arange(h * patch_px), np.arange(w * patch_px), indexing="ij")
    out = sample_embeddings(emb, rr.ravel(), cc.ravel(), patch_px)
    return out.T.reshape(d, h * patch_px, w * patch_px)


def _window(rows, cols):
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _read_window(stack, grid: PixelGrid, rows, cols):
    """Per slice: float32 [bands, N] at the pixels, NaN = nodata (engine.align readers)."""
    from ..align import ModelGrid, SliceReader

    r0, r1, c0, c1 = _window(rows, cols)
    mgrid = ModelGrid(grid.crs, grid.transform, grid.width, grid.height, 1.0)
    out = []
    for sl in stack:
        reader = SliceReader(sl, mgrid)
        try:
            data = reader.read(r0, c0, r1 - r0, c1 - c0)
        finally:
            reader.close()
        out.append(data[:, rows - r0, cols - c0])
    return out


def collect(meta, inputs, log=lambda m: None) -> dict:
    """modality name -> checked, date-sorted slices (engine.stack.collect_stack).

    Raises:
        InputError: as the engine's run does for the same inputs.
    """
    from ..api import SliceInput
    from ..stack import collect_stack

    given = {str(k).lower(): v for k, v in inputs.items()}
    out = {}
    for m in meta.modalities:
        if not given.get(m.name):
            raise InputError(f"model '{meta.name}' needs modality '{m.name}', which was not given")
        items = [SliceInput(x) if isinstance(x, str) else x for x in given[m.name]]
        out[m.name] = collect_stack(m, items, log)
    return out


def reference_statistics(meta, stacks: dict, grid: PixelGrid, rows: np.ndarray,
                         cols: np.ndarray) -> np.ndarray:
    """float32 [N, 2 C]: per band of the reference modality, the mean then the standard
    deviation of the scaled values over the dates where the pixel is valid (NaN when it is
    valid in no date)."""
    from ..preprocessing.scaling import scale_pixels

    ref = meta.reference
    values = _read_window(stacks[ref.name], grid, rows, cols)           # T x [C, N]
    x = np.stack(values).astype(np.float32)                              # [T, C, N]
    valid = ~np.isnan(x).any(axis=1)                                     # [T, N]
    x = scale_pixels(x, ref.scaling.transform, ref.scaling.mean, ref.scaling.std, band_axis=1)
    x = np.where(valid[:, None], x.astype(np.float64), 0.0)
    n = valid.sum(axis=0)[None]                                          # [1, N]
    safe = np.maximum(n, 1)
    m1 = x.sum(axis=0) / safe
    m2 = (x * x).sum(axis=0) / safe
    sd = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    out = np.concatenate([m1, sd], axis=0).T
    out[n[0] == 0] = np.nan
    return out.astype(np.float32)


def raw_pixel_values(meta, stacks: dict, grid: PixelGrid, rows: np.ndarray, cols: np.ndarray
                     ) -> tuple[np.ndarray, list[str]]:
    """(float32 [N, F], feature names): every band of every date of every modality (dates
    in order), on the reference grid; NaN = nodata."""
    feats, names = [], []
    for m in meta.modalities:
        for k, (sl, data) in enumerate(zip(stacks[m.name], _read_window(stacks[m.name], grid,
                                                                         rows, cols))):
            date = sl.when.date().isoformat() if sl.when else str(k)
            feats.append(data)
            names += [f"{m.name}:{date}:{b}" for b in m.bands]
    return np.concatenate(feats, axis=0).T.astype(np.float32), names
