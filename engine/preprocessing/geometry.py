"""Raster geometry facts the engine needs before reading: north-up grids, ground pixel size in
metres for any CRS, and the grid a GCP-georeferenced raster is warped to.

Pure Python + numpy; rasterio is imported inside the functions that need it.
"""
from __future__ import annotations

import math

#: WGS 84 ellipsoid (NIMA TR8350.2): semi-major axis (m) and first eccentricity squared.
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3


def north_up(transform, height: int):
    """The north-up equivalent of a south-up grid (positive y pixel size, no rotation).

    Returns:
        (transform, flipped): the same ground, rows top to bottom; ``flipped`` True when the
        stored rows run south to north (row ``r`` of the north-up grid is stored row
        ``height - 1 - r``).
    """
    from affine import Affine

    t = transform
    if t.e > 0 and t.b == 0 and t.d == 0:
        return Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * height), True
    return t, False


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """Ground length of one degree of longitude and of latitude at latitude ``lat_deg`` on
    the WGS 84 ellipsoid, metres.

    Formulas: parallel radius ``N cos(phi)`` and meridian radius ``M`` with
    ``N = a / sqrt(1 - e2 sin^2 phi)``, ``M = a (1 - e2) / (1 - e2 sin^2 phi)^1.5``
    (Snyder 1987, Map Projections - A Working Manual, USGS PP 1395, eqs. 4-18 and 4-20),
    times pi/180.
    """
    phi = math.radians(max(-90.0, min(90.0, lat_deg)))
    s2 = math.sin(phi) ** 2
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)
    m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    return math.radians(1) * n * math.cos(phi), math.radians(1) * m


def ground_pixel_size_m(crs, transform, width: int, height: int) -> tuple[float, float] | None:
    """Pixel width and height on the ground, metres, at the raster's centre.

    The centre pixel's column and row steps are transformed to longitude/latitude (GDAL/PROJ,
    ``rasterio.warp.transform``) and measured on the WGS 84 ellipsoid
    (:func:`metres_per_degree`), so a projection's scale is accounted for: Web Mercator's
    1 / cos(latitude) (14.36 units are 10 m on the ground at 45.9 N), UTM's 0.9996 on its
    central meridian. When the transformation fails, projected CRSs fall back to the pixel size
    times the CRS's linear unit. Returns None when the CRS is unknown.
    """
    if crs is None:
        return None
    cx, cy = width / 2.0, height / 2.0
    xs, ys = zip(*(transform * (c, r) for c, r in ((cx, cy), (cx + 1, cy), (cx, cy + 1))))
    try:
        if crs.is_geographic:
            lons, lats = list(xs), list(ys)
        else:
            from rasterio.warp import transform as transform_xy

            lons, lats = transform_xy(crs, "EPSG:4326", list(xs), list(ys))
        mx, my = metres_per_degree(lats[0])
        size = tuple(math.hypot((lons[k] - lons[0]) * mx, (lats[k] - lats[0]) * my)
                     for k in (1, 2))
        if all(math.isfinite(v) and v > 0 for v in size):
            return size[0], size[1]
    except Exception:  # noqa: BLE001 (PROJ errors: fall back to the CRS's units)
        pass
    if crs.is_geographic:
        return None
    try:
        _, factor = crs.linear_units_factor
    except Exception:
        return None
    return math.hypot(transform.a, transform.d) * factor, math.hypot(transform.b, transform.e) * factor


def pixel_size_warning(crs, transform, width: int, height: int, gsd_m: float,
                       tolerance: float = 0.25) -> str | None:
    """The run-log warning when the raster's ground pixel differs from the model's ``gsd_m``
    by more than ``tolerance`` (relative), or None.

    This is the check of engine.runner ``_report_grids`` made CRS-independent: an EPSG:4326
    raster at 0.001 deg (about 100 m at mid latitudes) warns like the same data in UTM at 100 m.
    """
    size = ground_pixel_size_m(crs, transform, width, height)
    if size is None:
        return None
    px = math.sqrt(size[0] * size[1])
    if abs(px - gsd_m) <= tolerance * gsd_m:
        return None
    where = (f" ({abs(transform.a):g} x {abs(transform.e):g} degrees at latitude "
             f"{(transform * (width / 2.0, height / 2.0))[1]:.2f})" if crs.is_geographic else "")
    return (f"warning: the reference raster's pixel is {px:.4g} m{where} but the model was "
            f"trained at {gsd_m:g} m: objects look {px / gsd_m:.2g} times smaller to it than in "
            f"training, which changes the map; resample the stack to {gsd_m:g} m first (e.g. "
            f"gdalwarp -tr {gsd_m:g} {gsd_m:g} -r bilinear, or gdalbuildvrt -resolution highest "
            "for band files of several resolutions)")


def grid_raster(slices, gsd_m: float):
    """The raster whose grid becomes the output grid: of one modality's ``slices`` (sorted by
    date), the one whose ground pixel is closest to the model's ``gsd_m`` (log scale: 20 m
    and 5 m are equally far from 10 m; sizes within about 1 % are equal), then one in the CRS
    most of the slices share, then the one covering the largest ground area, then the
    earliest. A stack mixing 10 m and 20 m dates is mapped at 10 m whichever date comes first,
    one date warped to another UTM zone does not move the map there, and a first date cropped
    smaller than the others does not crop the map.

    Args:
        slices: objects with ``crs``, ``transform``, ``width``, ``height`` (engine Slice).
    """
    def key(sl) -> tuple[float, int, float]:
        size = ground_pixel_size_m(sl.crs, sl.transform, sl.width, sl.height)
        if size is None:
            return (math.inf, 0, 0.0)
        # pixel sizes within about 1 % are equal (a UTM zone's scale, a reprojection's
        # rounding): then the CRS most slices share, the largest ground area, the earliest
        distance = abs(math.log(math.sqrt(size[0] * size[1]) / gsd_m))
        area = size[0] * size[1] * sl.width * sl.height
        same_crs = sum(1 for other in slices if other.crs == sl.crs)
        return (round(distance, 2), -same_crs, -round(area, -2))

    return min(slices, key=key)


def gcp_grid(gcps, gcp_crs, width: int, height: int):
    """The north-up grid GDAL's warper would choose for a GCP-georeferenced raster (as
    ``gdalwarp`` without ``-tr``/``-te``: first-order polynomial fit of the GCPs, pixel size
    preserving the diagonal).

    Returns:
        (transform, width, height) in ``gcp_crs``.
    """
    from rasterio.warp import calculate_default_transform

    return calculate_default_transform(gcp_crs, gcp_crs, width, height, gcps=gcps)
