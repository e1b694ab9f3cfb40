"""Class areas of a land-cover raster: hectares and percent of the mapped area per class.

Pure Python + numpy + rasterio (imported inside the function); no qgis import. Used by the
dock after a run (in the task's worker thread).

Areas are square metres on the ground whatever the map's CRS: each pixel's corners are
transformed (rasterio.warp.transform: GDAL/PROJ) to EPSG:6933, "WGS 84 / NSIDC EASE-Grid 2.0
Global", an equal-area projection (Lambert cylindrical equal-area on the WGS 84 ellipsoid,
standard parallels 30 N/S; EPSG registry, https://epsg.io/6933; Brodzik et al. 2012, "EASE-Grid
2.0", ISPRS Int. J. Geo-Inf. 1(1):32-45), where a polygon's planar area is its area on the
ellipsoid. A planar product of the geotransform would be 2.07x too large for a Web Mercator
(EPSG:3857) map at 45.9 N and meaningless (square degrees) for EPSG:4326; for UTM the ground
area differs from it by the scale factor squared (0.9992-1.0008 inside the zone).
"""
from __future__ import annotations

from dataclasses import dataclass

#: class-id nodata of the engine's land-cover output (engine/writer.py CLASS_NODATA)
CLASS_NODATA = 255
#: the equal-area CRS the pixel areas are measured in (see the module docstring)
EQUAL_AREA_CRS = "EPSG:6933"
#: a row of pixels is measured at this many column positions at most (the area of a pixel
#: varies along a row only through the projection's scale, e.g. UTM's 1 + x^2/2R^2: one
#: sample per 1/64 of the width keeps the error far below 0.01 %)
COLUMN_SAMPLES = 64


@dataclass(frozen=True)
class ClassArea:
    """One class's share of a map.

    Attributes:
        id, name, color: the model's class (``color`` ``#rrggbb``).
        pixels: pixels of that class.
        hectares: the ground area of those pixels / 10 000: each pixel's area on the WGS 84
            ellipsoid (measured in EPSG:6933, equal-area), whatever the map's CRS; a map
            without a CRS: pixels x the geotransform's pixel area (CRS units squared).
        percent: share of the mapped (non-nodata) ground area, 0-100.
    """

    id: int
    name: str
    color: str
    pixels: int
    hectares: float
    percent: float


def pixel_ground_areas(src) -> tuple:
    """Ground area of the pixels of an open rasterio dataset, row by row.

    Returns:
        ``(areas, column_bin)``: ``areas`` float64 (height, bins) in square metres, the area on
        the WGS 84 ellipsoid of a pixel of each row at each of ``bins`` sampled columns;
        ``column_bin`` int (width,), the sample that stands for each column. A dataset without
        a CRS: one bin, the geotransform's pixel area (CRS units squared).

    Raises:
        ValueError: the pixel corners cannot be placed in EPSG:6933 (outside its validity,
            beyond about 86 N/S).
    """
    import numpy as np

    width, height, t = src.width, src.height, src.transform
    if src.crs is None:
        return (np.full((height, 1), abs(t.a * t.e - t.b * t.d)),
                np.zeros(width, dtype=np.intp))
    from rasterio.warp import transform as warp_transform

    bins = min(width, COLUMN_SAMPLES)
    edges = np.linspace(0, width, bins + 1)
    # the sampled pixel of each bin: the one at the bin's centre
    cols = np.minimum(((edges[:-1] + edges[1:]) / 2).astype(np.int64), width - 1)
    column_bin = np.minimum(np.searchsorted(edges, np.arange(width), side="right") - 1,
                            bins - 1).astype(np.intp)
    # corner lattice: every row edge (height + 1) x the left and right edge of each sample
    cx = np.stack([cols, cols + 1], axis=1).ravel().astype(np.float64)   # (2 bins,)
    ry = np.arange(height + 1, dtype=np.float64)
    gx, gy = np.meshgrid(cx, ry)                                          # (h+1, 2 bins)
    x = t.c + t.a * gx + t.b * gy
    y = t.f + t.d * gx + t.e * gy
    ex, ey = warp_transform(src.crs, EQUAL_AREA_CRS, x.ravel().tolist(), y.ravel().tolist())
    ex = np.asarray(ex, dtype=np.float64).reshape(height + 1, bins, 2)
    ey = np.asarray(ey, dtype=np.float64).reshape(height + 1, bins, 2)
    if not (np.isfinite(ex).all() and np.isfinite(ey).all()):
        raise ValueError(f"the map's pixels cannot be placed in {EQUAL_AREA_CRS} "
                         "(equal-area, valid to about 86 N/S): no ground areas")
    # quadrilateral (top-left, top-right, bottom-right, bottom-left), shoelace formula
    qx = (ex[:-1, :, 0], ex[:-1, :, 1], ex[1:, :, 1], ex[1:, :, 0])
    qy = (ey[:-1, :, 0], ey[:-1, :, 1], ey[1:, :, 1], ey[1:, :, 0])
    twice = sum(qx[k] * qy[(k + 1) % 4] - qx[(k + 1) % 4] * qy[k] for k in range(4))
    return np.abs(twice) / 2.0, column_bin


def class_areas(path: str, classes) -> list[ClassArea]:
    """Count each class of a 1-band class-id raster block by block.

    Args:
        path: land-cover GeoTIFF (uint8 class ids, nodata 255).
        classes: the model's ``ClassSpec`` sequence (id, name, color).

    Returns:
        one :class:`ClassArea` per class, in the model's class order (classes absent from
        the map have 0 pixels).

    Areas are ground areas in any CRS (projected, Web Mercator, geographic): see
    :func:`pixel_ground_areas`.

    Raises:
        ValueError: the pixels cannot be placed in the equal-area CRS (near the poles).
        rasterio.errors.RasterioIOError: the file cannot be read.
    """
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        pixel_m2, column_bin = pixel_ground_areas(src)
        counts = np.zeros(256, dtype=np.int64)
        m2 = np.zeros(256, dtype=np.float64)
        for _, window in src.block_windows(1):
            data = src.read(1, window=window).astype(np.uint8).ravel()
            rows = slice(window.row_off, window.row_off + window.height)
            bins = column_bin[window.col_off:window.col_off + window.width]
            weights = pixel_m2[rows][:, bins].ravel()
            counts += np.bincount(data, minlength=256)[:256]
            m2 += np.bincount(data, weights=weights, minlength=256)[:256]
    mapped_m2 = float(m2.sum() - m2[CLASS_NODATA])
    out = []
    for c in classes:
        ok = 0 <= int(c.id) < 256
        n = int(counts[int(c.id)]) if ok else 0
        ha = float(m2[int(c.id)]) / 10000.0 if ok else 0.0
        out.append(ClassArea(int(c.id), c.name, c.color, n, ha,
                             100.0 * ha * 10000.0 / mapped_m2 if mapped_m2 > 0 else 0.0))
    return out
