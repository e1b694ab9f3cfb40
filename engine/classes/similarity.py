"""Similarity and change maps from embeddings rasters (the engine's encoder features, float32
[D bands] on the token grid, NaN = nodata), streamed by blocks of rows.

- :func:`similarity_map`: cosine similarity of every token to the mean embedding of example
  places (points: the token containing them; polygons: tokens whose centre is inside);
- :func:`change_map`: cosine distance ``1 - cos(e1, e2)`` (0 = same direction, up to 2)
  between the embeddings of two periods on the same grid, and optionally a change mask by a
  threshold, given or chosen by Otsu's method on the distances (Otsu, N. 1979, "A threshold
  selection method from gray-level histograms", IEEE Trans. Systems, Man, and Cybernetics 9(1),
  62-66).

numpy + rasterio; outputs through engine.writer (temporary name, COG, renamed on success).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import CancelledError, InputError

ROWS = 256
#: histogram of distances for Otsu's threshold: bins over [0, 2]
HIST_BINS = 1000


def _open(path: str):
    import rasterio

    try:
        return rasterio.open(path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"embeddings raster '{path}' cannot be opened: {exc}") from exc


def _rows(src, r0: int, n: int) -> np.ndarray:
    from rasterio.windows import Window

    data = src.read(window=Window(0, r0, src.width, n), out_dtype="float32")
    if src.nodata is not None and not np.isnan(src.nodata):
        data[data == src.nodata] = np.nan
    return data


def query_vector(emb_path: str, shapes: Sequence[dict], shapes_crs) -> tuple[np.ndarray, int]:
    """(mean embedding [D] of the example tokens, number of tokens used).

    Raises:
        InputError: no example falls on a valid token of the raster.
    """
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    with _open(emb_path) as src:
        crs = src.crs
        src_crs = CRS.from_user_input(shapes_crs)
        geoms = [g if src_crs == crs else transform_geom(src_crs, crs, g) for g in shapes]
        if not geoms:
            raise InputError("no example geometry was given")
        burnt = rasterize(geoms, out_shape=(src.height, src.width), transform=src.transform,
                          fill=0, default_value=1, dtype="uint8").astype(bool)
        if not burnt.any():     # examples smaller than a cell of the token grid: the cells
            burnt = rasterize(geoms, out_shape=(src.height, src.width),  # they touch
                              transform=src.transform, fill=0, default_value=1, dtype="uint8",
                              all_touched=True).astype(bool)
        cell_m = abs(src.transform.a)
        rows, cols = np.nonzero(burnt)
        vecs = []
        for r0 in range(0, src.height, ROWS):
            sel = (rows >= r0) & (rows < r0 + ROWS)
            if sel.any():
                block = _rows(src, r0, min(ROWS, src.height - r0))
                vecs.append(block[:, rows[sel] - r0, cols[sel]].T)
    x = np.concatenate(vecs) if vecs else np.zeros((0, 1), np.float32)
    x = x[np.isfinite(x).all(axis=1)] if len(x) else x
    if not len(x):
        raise InputError(f"no example falls on a valid cell of the encoder-feature grid (cells "
                         f"of {cell_m:g} CRS units): check the examples' CRS and extent, and that "
                         "they are not on nodata")
    return x.mean(axis=0), len(x)


def _writer(src, path, cog, name):
    from ..writer import RasterWriter

    return RasterWriter(path, width=src.width, height=src.height, count=1, dtype="float32",
                        crs=src.crs, transform=src.transform, cog=cog, band_names=[name])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of [D, ...] vectors along axis 0 (NaN where either is nodata or zero)."""
    num = (a * b).sum(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan).astype(np.float32)


def mean_embedding(emb_path: str) -> np.ndarray:
    """float64 [D]: the mean of the valid tokens of an embeddings raster (streamed)."""
    with _open(emb_path) as src:
        total, count = np.zeros(src.count), 0
        for r0 in range(0, src.height, ROWS):
            block = _rows(src, r0, min(ROWS, src.height - r0)).reshape(src.count, -1)
            ok = np.isfinite(block).all(axis=0)
            total += block[:, ok].sum(axis=1)
            count += int(ok.sum())
    if not count:
        raise InputError(f"embeddings raster '{emb_path}' has no valid pixel")
    return total / count


def similarity_map(emb_path: str, query: np.ndarray, out_path: str, cog: bool = True,
                   center: bool = True, progress: Callable[[float], None] | None = None,
                   is_cancelled: Callable[[], bool] | None = None) -> str:
    """Write the cosine similarity (-1..1) of every token to ``query`` [D].

    With ``center`` the raster's mean embedding is subtracted from both first, so places are
    compared by how they differ from the average place of the raster (without it, what every
    place shares dominates: encoders' features are often all within a narrow cone).
    """
    with _open(emb_path) as src:
        if src.count != len(query):
            raise InputError(f"embeddings raster '{emb_path}' has {src.count} bands, the "
                             f"examples' vector {len(query)}")
        mean = (mean_embedding(emb_path) if center else np.zeros(src.count)).astype(np.float32)
        writer = _writer(src, out_path, cog, "cosine_similarity")
        try:
            q = (np.asarray(query, np.float32) - mean)[:, None, None]
            for r0 in range(0, src.height, ROWS):
                if is_cancelled and is_cancelled():
                    raise CancelledError("similarity cancelled; no output was written")
                block = _rows(src, r0, min(ROWS, src.height - r0)) - mean[:, None, None]
                writer.write_rows(r0, _cosine(block, q)[None])
                if progress:
                    progress(min(1.0, (r0 + ROWS) / src.height))
            return writer.commit()
        except BaseException:
            writer.abort()
            raise


#: Below this separability the distances form no two clear groups. Otsu's measure
#: eta = between-class / total variance at the threshold is 2/pi = 0.64 for a single normal
#: distribution and tends to 1 for two well separated groups (Otsu 1979, section III).
MIN_SEPARABILITY = 0.75


def otsu_threshold(hist: np.ndarray, edges: np.ndarray) -> float:
    """The threshold maximising the between-class variance of a histogram (Otsu 1979)."""
    return otsu(hist, edges)[0]


def otsu(hist: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of a histogram and its separability eta (between-class variance over
    total variance at that threshold, 0..1; Otsu 1979)."""
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centres)
    mu_t = mu[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mu_t * w0 - mu) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = -1
    best = int(np.argmax(between))
    total = float((p * (centres - mu_t) ** 2).sum())
    eta = float(between[best] / total) if total > 0 and between[best] > 0 else 0.0
    return float(edges[best + 1]), eta


def change_map(emb_a: str, emb_b: str, out_path: str, mask_path: str | None = None,
               threshold: float | None = None, cog: bool = True,
               progress: Callable[[float], None] | None = None,
               is_cancelled: Callable[[], bool] | None = None) -> dict:
    """Write the cosine distance of two embeddings rasters and, with ``mask_path``, a change
    mask (uint8: 1 = change, 0 = no change, 255 = nodata) at ``threshold`` (None or <= 0:
    Otsu's threshold of the distances).

    Returns:
        {"distance": path, "mask": path or None, "threshold": float or None,
         "changed_fraction": float or None, "separability": Otsu's eta or None (the
         threshold was given); below :data:`MIN_SEPARABILITY` the automatic threshold splits
         one group of distances and the mask is not a change map}

    Raises:
        InputError: the rasters are not on the same grid or have different band counts.
    """
    from ..writer import RasterWriter

    with _open(emb_a) as a, _open(emb_b) as b:
        if (a.count, a.width, a.height, a.crs) != (b.count, b.width, b.height, b.crs) or \
                not a.transform.almost_equals(b.transform, precision=1e-6 * abs(a.transform.a)):
            raise InputError(
                "the two periods' embeddings are not on the same grid (bands, size, CRS, "
                f"pixel grid differ: {a.count}x{a.height}x{a.width} vs {b.count}x{b.height}x"
                f"{b.width}): give both periods reference rasters on the same grid")
        writer = _writer(a, out_path, cog, "cosine_distance")
        hist = np.zeros(HIST_BINS, dtype=np.int64)
        edges = np.linspace(0.0, 2.0, HIST_BINS + 1)
        try:
            for r0 in range(0, a.height, ROWS):
                if is_cancelled and is_cancelled():
                    raise CancelledError("change map cancelled; no output was written")
                n = min(ROWS, a.height - r0)
                dist = 1.0 - _cosine(_rows(a, r0, n), _rows(b, r0, n))
                writer.write_rows(r0, dist[None])
                ok = np.isfinite(dist)
                hist += np.histogram(np.clip(dist[ok], 0, 2), bins=edges)[0]
                if progress:
                    progress(0.8 * min(1.0, (r0 + n) / a.height))
            distance = writer.commit()
        except BaseException:
            writer.abort()
            raise
        result = {"distance": distance, "mask": None, "threshold": None, "changed_fraction": None}
        if not mask_path:
            return result
        if hist.sum() == 0:
            raise InputError("the two periods share no valid pixel: no change mask")
        separability = None
        if threshold and threshold > 0:
            t = float(threshold)
        else:
            t, separability = otsu(hist, edges)
        mask = RasterWriter(mask_path, width=a.width, height=a.height, count=1, dtype="uint8",
                            crs=a.crs, transform=a.transform, cog=cog, band_names=["change"])
        changed = 0
        try:
            with _open(distance) as d:
                for r0 in range(0, a.height, ROWS):
                    n = min(ROWS, a.height - r0)
                    dist = _rows(d, r0, n)[0]
                    out = np.where(np.isfinite(dist), (dist > t).astype(np.uint8), 255)
                    changed += int((out == 1).sum())
                    mask.write_rows(r0, out[None].astype(np.uint8))
            result["mask"] = mask.commit()
        except BaseException:
            mask.abort()
            raise
        if progress:
            progress(1.0)
        result.update(threshold=t, changed_fraction=changed / max(int(hist.sum()), 1),
                      separability=separability)
        return result
