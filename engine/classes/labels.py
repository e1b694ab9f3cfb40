"""Labels drawn by the analyst (points, polygons) onto the reference pixel grid.

GDAL's rasteriser (``rasterio.features.rasterize``): a polygon labels the pixels whose centre
is inside it (a polygon narrower than a pixel may label none), a point the pixel that
contains it, a line the pixels of its path. A pixel that
two classes claim is left unlabelled (and counted), never given to one of them at random.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError

UNLABELLED = -1


@dataclass
class LabelRaster:
    """Labels on a pixel grid.

    Attributes:
        labels: int16 [H, W], class index or UNLABELLED.
        conflicts: pixels claimed by more than one class (left unlabelled).
        per_class: class index -> labelled pixels.
    """

    labels: np.ndarray
    conflicts: int
    per_class: dict[int, int]


def rasterize_labels(shapes: Sequence[tuple[dict, int]], transform, width: int, height: int,
                     n_classes: int) -> LabelRaster:
    """Burn (GeoJSON-like geometry in the grid's CRS, class index) pairs onto a grid.

    Raises:
        InputError: no shape, a class index outside 0..n_classes-1, or no labelled pixel
            on the grid (the shapes miss the rasters).
    """
    from rasterio.features import rasterize

    if not shapes:
        raise InputError("no labelled geometry was given")
    for _, c in shapes:
        if not 0 <= c < n_classes:
            raise InputError(f"class index {c} outside 0..{n_classes - 1}")
    hits = np.zeros((height, width), dtype=np.int32)
    labels = np.full((height, width), UNLABELLED, dtype=np.int16)
    for k in range(n_classes):
        geoms = [g for g, c in shapes if c == k]
        if not geoms:
            continue
        burnt = rasterize(geoms, out_shape=(height, width), transform=transform, fill=0,
                          default_value=1, dtype="uint8", all_touched=False)
        mine = burnt.astype(bool)
        hits += mine
        labels[mine] = k
    conflicts = int((hits > 1).sum())
    labels[hits > 1] = UNLABELLED
    per_class = {k: int((labels == k).sum()) for k in range(n_classes)}
    if not any(per_class.values()):
        raise InputError("no labelled pixel falls on the rasters: the label layer does not "
                         "overlap the inputs (check its CRS and extent)")
    return LabelRaster(labels, conflicts, per_class)

