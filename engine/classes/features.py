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
from typing import Any

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

    crs: Any
    transform: Any
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
    return _sample_clamped(emb, rows, cols, patch_px, (0, 0), emb.shape[1:])


def upsample_embeddings(emb: np.ndarray, patch_px: int) -> np.ndarray:
    """float32 [D, h * p, w * p]: the whole raster interpolated as :func:`sample_embeddings`."""
    d, h, w = emb.shape
    rr, cc = np.meshgrid(np.arange(h * patch_px), np.arange(w * patch_px), indexing="ij")
    out = sample_embeddings(emb, rr.ravel(), cc.ravel(), patch_px)
    return out.T.reshape(d, h * patch_px, w * patch_px)


#: side of the blocks read around labelled pixels (pixels of the reference grid)
BLOCK = 256


def _blocks(rows: np.ndarray, cols: np.ndarray, size: int | None = None):
    """(r0, c0, indices) per BLOCK x BLOCK block of the grid holding labelled pixels."""
    size = size or BLOCK
    key = (rows // size) * (int(cols.max()) // size + 1) + cols // size
    for k in np.unique(key):
        idx = np.nonzero(key == k)[0]
        yield int(rows[idx[0]] // size * size), int(cols[idx[0]] // size * size), idx


def _read_window(stack, grid: PixelGrid, rows, cols):
    """Per slice: float32 [bands, N] at the pixels, NaN = nodata (engine.align readers), read
    block by block (only the blocks holding labelled pixels: memory stays bounded however far
    apart the labels are)."""
    from ..align import ModelGrid, SliceReader

    mgrid = ModelGrid(grid.crs, grid.transform, grid.width, grid.height, 1.0)
    out = []
    for sl in stack:
        reader = SliceReader(sl, mgrid)
        try:
            values = None
            for r0, c0, idx in _blocks(rows, cols):
                data = reader.read(r0, c0, min(BLOCK, grid.height - r0),
                                   min(BLOCK, grid.width - c0))
                if values is None:
                    values = np.full((data.shape[0], len(rows)), np.nan, dtype=np.float32)
                values[:, idx] = data[:, rows[idx] - r0, cols[idx] - c0]
        finally:
            reader.close()
        out.append(values)
    return out


def sample_embeddings_file(path: str, rows: np.ndarray, cols: np.ndarray, patch_px: int
                           ) -> np.ndarray | None:
    """:func:`sample_embeddings` reading the embeddings raster block by block (the tokens
    around each block of labelled pixels, with a one-token margin for the interpolation).
    None when ``rows`` is empty."""
    import rasterio
    from rasterio.windows import Window

    out = None
    with rasterio.open(path) as src:
        h, w = src.height, src.width
        for r0, c0, idx in _blocks(rows, cols):
            t0, u0 = max(r0 // patch_px - 1, 0), max(c0 // patch_px - 1, 0)
            t1 = min((r0 + BLOCK) // patch_px + 2, h)
            u1 = min((c0 + BLOCK) // patch_px + 2, w)
            emb = src.read(window=Window(u0, t0, u1 - u0, t1 - t0), out_dtype="float32")
            if src.nodata is not None and not np.isnan(src.nodata):
                emb[emb == src.nodata] = np.nan
            # sample in the window's frame, with the whole raster's edge clamping
            vals = _sample_clamped(emb, rows[idx], cols[idx], patch_px, (t0, u0), (h, w))
            if out is None:
                out = np.full((len(rows), emb.shape[0]), np.nan, dtype=np.float32)
            out[idx] = vals
    return out


def _sample_clamped(emb, rows, cols, patch_px, origin, full):
    """Bilinear sampling of a window ``emb`` [D, wh, ww] whose token (0, 0) is ``origin`` of a
    raster of ``full`` tokens; the taps are clamped at the raster's edges, not the window's."""
    (t0, u0), (h, w) = origin, full
    r_lo, r_hi, fr = _linear_taps((rows + 0.5) / patch_px, h)
    c_lo, c_hi, fc = _linear_taps((cols + 0.5) / patch_px, w)
    r_lo, r_hi, c_lo, c_hi = r_lo - t0, r_hi - t0, c_lo - u0, c_hi - u0
    top = emb[:, r_lo, c_lo] * (1 - fc) + emb[:, r_lo, c_hi] * fc
    bottom = emb[:, r_hi, c_lo] * (1 - fc) + emb[:, r_hi, c_hi] * fc
    out = top * (1 - fr) + bottom * fr
    bad = np.isnan(out).any(axis=0)
    if bad.any():
        own_r = np.minimum(rows[bad] // patch_px, h - 1) - t0
        own_c = np.minimum(cols[bad] // patch_px, w - 1) - u0
        out[:, bad] = emb[:, own_r, own_c]
    return out.T.astype(np.float32)


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
