"""Reading a classified map (one band of class ids) for an accuracy assessment: the pixel
count of every class (streamed block by block), the pixel area, the class names the map
carries (GDAL category names, as :mod:`engine.writer` writes them) and the class at points.

rasterio is imported inside the functions; no QGIS, no onnxruntime.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .preprocessing.geometry import ground_pixel_size_m


@dataclass
class ClassMap:
    """What :func:`read_class_map` found.

    Attributes:
        path: the raster.
        counts: class id -> number of pixels (nodata excluded; classes with 0 left out).
        pixel_area: area of one pixel in ``area_unit`` (:func:`_pixel_area_m2`).
        area_unit: ``"m2"``, or ``"pixel"`` when the raster has no CRS (counted, not measured).
        names: class id -> name from the raster's category names (may be empty).
        crs_wkt: the raster's CRS as WKT ("" when it has none).
        at_points: class id at each point given (-1 outside the raster or on nodata).
    """

    path: str
    counts: dict[int, int]
    pixel_area: float
    area_unit: str
    names: dict[int, str] = field(default_factory=dict)
    crs_wkt: str = ""
    at_points: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _pixel_area_m2(crs, transform, width: int, height: int) -> tuple[float, str]:
    """(area of one pixel, unit). A projected CRS whose pixel is within 1 % of its ground size
    (UTM and other true-scale projections): the planar area, the area convention of map
    accuracy assessment (pixel count x pixel area, Olofsson et al. 2014, Remote Sens. Environ.
    148:42-57). Otherwise (Web Mercator: 2.07x at 45.9 N; a geographic CRS: square degrees)
    the ground area at the raster's centre on the WGS 84 ellipsoid
    (engine.preprocessing.geometry.ground_pixel_size_m); its change across the raster is not
    followed (< 0.1 % over a few km of latitude). No CRS: 1 ``pixel``."""
    ground = ground_pixel_size_m(crs, transform, width, height)
    if ground is None:
        return 1.0, "pixel"
    ground_area = ground[0] * ground[1]
    if crs.is_projected:
        factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
        planar = abs(transform.a * transform.e - transform.b * transform.d) * factor ** 2
        if abs(planar / ground_area - 1.0) <= 0.01:
            return planar, "m2"
    return ground_area, "m2"


def read_class_map(path: str, xs=(), ys=(), progress=None, is_cancelled=None) -> ClassMap:
    """Count the classes of band 1 of ``path`` and read the class under each point.

    Args:
        path: a raster of integer class ids (its nodata value is not a class).
        xs, ys: point coordinates in the raster's CRS.
        progress: optional ``progress(fraction)`` per block row.
        is_cancelled: optional; True stops with :class:`engine.errors.CancelledError`.

    Raises:
        InputError: the file cannot be opened, or band 1 is not of an integer type.
        CancelledError: when ``is_cancelled()`` became True.
    """
    import rasterio
    from rasterio.windows import Window

    from .errors import CancelledError

    try:
        src = rasterio.open(path)
    except Exception as exc:  # noqa: BLE001 (rasterio raises several types)
        raise InputError(f"classified map '{path}' cannot be opened: {exc}") from exc
    with src:
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InputError(f"classified map '{path}' has {src.dtypes[0]} values: band 1 must "
                             "hold integer class ids")
        nodata = src.nodata
        totals = np.zeros(0, dtype=np.int64)
        step = max(1, (src.block_shapes[0][0] if src.block_shapes else 256))
        step = max(step, 256)
        for r0 in range(0, src.height, step):
            if is_cancelled and is_cancelled():
                raise CancelledError("accuracy assessment cancelled")
            h = min(step, src.height - r0)
            block = src.read(1, window=Window(0, r0, src.width, h), masked=True)
            values = block.compressed() if np.ma.isMaskedArray(block) else block.ravel()
            if nodata is not None:
                values = values[values != nodata]
            if values.size:
                if values.min() < 0:
                    raise InputError(f"classified map '{path}' holds negative values "
                                     f"({int(values.min())}): class ids must be >= 0")
                bc = np.bincount(values.astype(np.int64))
                if bc.size > totals.size:
                    totals = np.pad(totals, (0, bc.size - totals.size))
                totals[:bc.size] += bc
            if progress:
                progress(min(1.0, (r0 + h) / src.height))
        counts = {int(i): int(c) for i, c in enumerate(totals) if c > 0}
        names = _category_names(src)
        crs = src.crs
        pixel_area, unit = _pixel_area_m2(crs, src.transform, src.width, src.height)
        at = np.full(len(xs), -1, dtype=np.int64)
        if len(xs):
            rows, cols = rasterio.transform.rowcol(src.transform, list(xs), list(ys))
            rows, cols = np.asarray(rows), np.asarray(cols)
            inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
            for k in np.nonzero(inside)[0]:
                v = src.read(1, window=Window(int(cols[k]), int(rows[k]), 1, 1), masked=True)
                if not np.ma.is_masked(v[0, 0]) and (nodata is None or v[0, 0] != nodata):
                    at[k] = int(v[0, 0])
        return ClassMap(path=path, counts=counts, pixel_area=pixel_area, area_unit=unit,
                        names=names, crs_wkt=crs.to_wkt() if crs else "", at_points=at)


def _category_names(src) -> dict[int, str]:
    """Class names from the GDAL category names of band 1 (empty entries skipped)."""
    try:
        from osgeo import gdal
    except ImportError:
        return {}
    ds = gdal.Open(src.name)
    if ds is None:
        return {}
    band = ds.GetRasterBand(1)
    band.GetDescription()  # GDAL 3.6's GTiff loads the .aux.xml (PAM) lazily: this loads it
    cats = band.GetCategoryNames() or []
    return {i: str(n) for i, n in enumerate(cats) if n}
