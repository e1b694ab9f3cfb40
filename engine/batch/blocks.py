"""Split an area into blocks aligned to the reference raster's grid.

The engine keeps its tile grid anchored at the reference raster's top-left pixel whatever
``RunOptions.bounds`` asks for, and reads the context it needs around those bounds. So a
block run on its own bounds gives exactly the pixels of a whole-area run: blocks are a plain
partition of the area (no seams to blend), and the overlap the model needs between tiles is
handled inside each engine call. Block origins and sizes are multiples of the reference
``tile_px`` so that coarser outputs (one pixel per tile for classification, one per token for
embeddings) also abut without overlap.

All windows are in reference-raster pixels ``(col_off, row_off, width, height)``; all bounds
are ``(xmin, ymin, xmax, ymax)`` in the reference raster's CRS (metres for projected CRSs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from engine.errors import InputError

Bounds = tuple[float, float, float, float]
Window = tuple[int, int, int, int]


@dataclass(frozen=True)
class ReferenceGrid:
    """The reference raster's pixel grid: north-up affine ``(x0, res_x, y0, res_y)``, size in px.

    ``res_y`` is the (positive) pixel height; rows run north to south.
    """

    x0: float
    y0: float
    res_x: float
    res_y: float
    width: int
    height: int
    crs_wkt: str

    @classmethod
    def from_raster(cls, path: str) -> "ReferenceGrid":
        """Read the grid of a raster file (GeoTIFF, VRT, JP2...); refuses rotated grids."""
        import rasterio

        try:
            with rasterio.open(path) as src:
                t = src.transform
                crs = src.crs
                width, height = src.width, src.height
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"Cannot open the reference raster {path}: {exc}") from exc
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise InputError(f"The reference raster {path} is not a north-up grid "
                             f"(transform {tuple(t)[:6]}); warp it first (gdalwarp).")
        if crs is None:
            raise InputError(f"The reference raster {path} has no CRS.")
        return cls(x0=t.c, y0=t.f, res_x=t.a, res_y=-t.e, width=width, height=height,
                   crs_wkt=crs.to_wkt())

    def window_bounds(self, window: Window) -> Bounds:
        """Ground bounds of a pixel window."""
        col, row, w, h = window
        return (self.x0 + col * self.res_x, self.y0 - (row + h) * self.res_y,
                self.x0 + (col + w) * self.res_x, self.y0 - row * self.res_y)

    def snap_window(self, bounds: Bounds, align_px: int = 1) -> Window | None:
        """Smallest window on multiples of ``align_px`` (from the top-left pixel) covering
        ``bounds``, clipped to the raster; None when it does not intersect the raster."""
        xmin, ymin, xmax, ymax = bounds
        if not (xmax > xmin and ymax > ymin):
            raise InputError(f"Empty or inverted area bounds {bounds} (need xmin<xmax, ymin<ymax).")
        # A tolerance of 1e-6 px keeps bounds that sit on pixel edges from growing by one pixel.
        eps = 1e-6
        c0 = math.floor((xmin - self.x0) / self.res_x + eps)
        c1 = math.ceil((xmax - self.x0) / self.res_x - eps)
        r0 = math.floor((self.y0 - ymax) / self.res_y + eps)
        r1 = math.ceil((self.y0 - ymin) / self.res_y - eps)
        c0, r0 = (c0 // align_px) * align_px, (r0 // align_px) * align_px
        c1, r1 = -(-c1 // align_px) * align_px, -(-r1 // align_px) * align_px
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, self.width), min(r1, self.height)
        if c1 <= c0 or r1 <= r0:
            return None
        return (c0, r0, c1 - c0, r1 - r0)


@dataclass(frozen=True)
class Block:
    """One unit of work: an engine call over ``bounds`` writing ``blocks/<id>.tif``."""

    id: str
    window: Window
    bounds: Bounds

    @property
    def pixels(self) -> int:
        """Reference pixels in the block."""
        return self.window[2] * self.window[3]


def split_area(grid: ReferenceGrid, area: Bounds, block_px: int, align_px: int) -> list[Block]:
    """Blocks of a global grid of ``block_px`` squares (anchored at the raster's top-left
    pixel) that intersect ``area``, each cut to the area's aligned window.

    Ids are ``r<row>_c<col>`` of the global block grid, so the same block keeps its id (and
    its output file) whatever area a later run asks for.
    """
    if block_px <= 0 or block_px % align_px:
        raise InputError(f"Block size {block_px} px must be a positive multiple of the model's "
                         f"tile size ({align_px} px).")
    window = grid.snap_window(area, align_px)
    if window is None:
        raise InputError(f"The area {tuple(round(v, 3) for v in area)} does not intersect the "
                         f"reference raster (bounds "
                         f"{tuple(round(v, 3) for v in grid.window_bounds((0, 0, grid.width, grid.height)))}).")
    c0, r0, w, h = window
    blocks = []
    for br in range(r0 // block_px, (r0 + h - 1) // block_px + 1):
        for bc in range(c0 // block_px, (c0 + w - 1) // block_px + 1):
            bx0, by0 = max(bc * block_px, c0), max(br * block_px, r0)
            bx1, by1 = min((bc + 1) * block_px, c0 + w), min((br + 1) * block_px, r0 + h)
            win = (bx0, by0, bx1 - bx0, by1 - by0)
            blocks.append(Block(f"r{br:05d}_c{bc:05d}", win, grid.window_bounds(win)))
    return blocks


def explicit_blocks(grid: ReferenceGrid, extents: Sequence[Bounds], align_px: int) -> list[Block]:
    """One block per given extent, snapped outward to the tile grid and clipped to the raster.

    Ids are ``b<index>`` in the order given; extents outside the raster are refused.
    """
    blocks = []
    for i, ext in enumerate(extents):
        win = grid.snap_window(ext, align_px)
        if win is None:
            raise InputError(f"Block extent #{i + 1} {tuple(ext)} does not intersect the "
                             "reference raster.")
        blocks.append(Block(f"b{i:05d}", win, grid.window_bounds(win)))
    ids = {b.window for b in blocks}
    if len(ids) != len(blocks):
        raise InputError("Two block extents snap to the same window of the reference grid; "
                         "give each block once.")
    return blocks


def area_from_raster(path: str, grid: ReferenceGrid) -> Bounds:
    """A raster's extent in the reference CRS."""
    import rasterio
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"The area raster {path} has no CRS.")
            return tuple(transform_bounds(src.crs, grid.crs_wkt, *src.bounds, densify_pts=21))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"Cannot open the area raster {path}: {exc}") from exc


def area_from_vector(path: str, grid: ReferenceGrid, layer: str | None = None) -> Bounds:
    """The extent of a vector layer (any OGR format; first layer unless named) in the
    reference CRS."""
    from osgeo import ogr, osr
    from rasterio.warp import transform_bounds

    ogr.UseExceptions()
    try:
        ds = ogr.Open(path)
    except RuntimeError as exc:
        raise InputError(f"Cannot open the area vector {path}: {exc}") from exc
    if ds is None:
        raise InputError(f"Cannot open the area vector {path}.")
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    if lyr is None:
        raise InputError(f"The area vector {path} has no layer {layer or 0!r}.")
    if lyr.GetFeatureCount() == 0:
        raise InputError(f"The area vector {path} has no features.")
    xmin, xmax, ymin, ymax = lyr.GetExtent()
    srs = lyr.GetSpatialRef()
    if srs is None:
        raise InputError(f"The area vector {path} has no CRS.")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return tuple(transform_bounds(srs.ExportToWkt(), grid.crs_wkt, xmin, ymin, xmax, ymax,
                                  densify_pts=21))


def parse_bounds(text: str) -> Bounds:
    """``"xmin,ymin,xmax,ymax"`` -> tuple of floats (CLI and Processing extent strings)."""
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InputError(f"Bounds {text!r} must be four numbers xmin,ymin,xmax,ymax.")
    return values


def total_pixels(blocks: Iterable[Block]) -> int:
    """Reference pixels over all blocks."""
    return sum(b.pixels for b in blocks)
