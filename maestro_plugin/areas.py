"""Class areas of a land-cover raster: hectares and percent of the mapped pixels per class.

Pure Python + numpy + rasterio (imported inside the function); no qgis import. Used by the
dock after a run (in the task's worker thread).
"""
from __future__ import annotations

from dataclasses import dataclass

#: class-id nodata of the engine's land-cover output (engine/writer.py CLASS_NODATA)
CLASS_NODATA = 255


@dataclass(frozen=True)
class ClassArea:
    """One class's share of a map.

    Attributes:
        id, name, color: the model's class (``color`` ``#rrggbb``).
        pixels: pixels of that class.
        hectares: pixels x pixel area / 10 000 (pixel area from the raster's geotransform,
            in the raster CRS's units squared: metres for projected CRSs).
        percent: share of the mapped (non-nodata) pixels, 0-100.
    """

    id: int
    name: str
    color: str
    pixels: int
    hectares: float
    percent: float


def class_areas(path: str, classes) -> list[ClassArea]:
    """Count each class of a 1-band class-id raster block by block.

    Args:
        path: land-cover GeoTIFF (uint8 class ids, nodata 255).
        classes: the model's ``ClassSpec`` sequence (id, name, color).

    Returns:
        one :class:`ClassArea` per class, in the model's class order (classes absent from
        the map have 0 pixels).

    Raises:
        ValueError: the raster's CRS is geographic (degrees: no area without reprojection).
        rasterio.errors.RasterioIOError: the file cannot be read.
    """
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        if src.crs is not None and src.crs.is_geographic:
            raise ValueError(f"'{path}' is in a geographic CRS: areas need a projected CRS")
        pixel_m2 = abs(src.transform.a * src.transform.e - src.transform.b * src.transform.d)
        counts = np.zeros(256, dtype=np.int64)
        for _, window in src.block_windows(1):
            data = src.read(1, window=window)
            counts += np.bincount(data.ravel().astype(np.uint8), minlength=256)[:256]
    mapped = int(counts.sum() - counts[CLASS_NODATA])
    out = []
    for c in classes:
        n = int(counts[int(c.id)]) if 0 <= int(c.id) < 256 else 0
        out.append(ClassArea(int(c.id), c.name, c.color, n, n * pixel_m2 / 10000.0,
                             100.0 * n / mapped if mapped else 0.0))
    return out
