"""Labels digitised from the bundled Slovenia reference map as an analyst would draw them:
points and small rectangles, in the WEST part only (training columns 0-55 of
training/recipes/slovenia.py; the buffer and held-out east columns get none).

Seeded: the same arguments give the same GeoPackage. Per class, rectangles (up to 5 x 5 px,
drawn inside homogeneous areas of the class: every pixel of a rectangle has that class in the
reference) until about half of the target, then points on other pixels of the class.
Target per class: ``min(per_class, 60 % of the class's west pixels)`` (the rare classes have
few: artificial surface has 62 west pixels).

``python scripts/own_classes_labels.py out.gpkg [--seed 0] [--per-class 300]`` writes two
layers, ``points`` and ``polygons``, with fields ``class`` (the reference class name) and
``color`` (its eo-learn colour), in the sample's CRS.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample")
#: (name, colour, eo-learn code) of the classes of the bundled model (the recipe's CLASSES)
CLASSES = [("forest", "#054907", 2), ("grassland", "#ffa500", 3), ("shrubland", "#806000", 4),
           ("artificial surface", "#dc143c", 8)]
WEST_COLS = (0, 56)


def draw(codes: np.ndarray, seed: int = 0, per_class: int = 300, max_side: int = 5):
    """(rectangles [(class index, r0, c0, r1, c1) half-open px], points [(class index, r, c)])."""
    rng = np.random.default_rng(seed)
    west = np.zeros(codes.shape, dtype=bool)
    west[:, WEST_COLS[0]:WEST_COLS[1]] = True
    rects, points = [], []
    for k, (_, _, code) in enumerate(CLASSES):
        mine = (codes == code) & west
        target = min(per_class, int(0.6 * mine.sum()))
        taken = np.zeros_like(mine)
        rows, cols = np.nonzero(mine)
        order = rng.permutation(len(rows))
        for i in order:
            if taken.sum() >= target // 2:
                break
            r, c = rows[i], cols[i]
            side = int(rng.integers(2, max_side + 1))
            r0, c0 = r - side // 2, c - side // 2
            r1, c1 = r0 + side, c0 + side
            if r0 < 0 or c0 < 0 or r1 > codes.shape[0] or c1 > WEST_COLS[1]:
                continue
            if mine[r0:r1, c0:c1].all() and not taken[r0:r1, c0:c1].any():
                rects.append((k, int(r0), int(c0), int(r1), int(c1)))
                taken[r0:r1, c0:c1] = True
        free = np.nonzero(mine & ~taken)
        need = max(0, target - int(taken.sum()))
        pick = rng.choice(len(free[0]), size=min(need, len(free[0])), replace=False)
        points += [(k, int(free[0][j]), int(free[1][j])) for j in pick]
    return rects, points


def write(path: str, seed: int = 0, per_class: int = 300) -> dict:
    """Write the GeoPackage; returns {class name: labelled pixels}."""
    import rasterio
    from osgeo import ogr, osr

    with rasterio.open(os.path.join(SAMPLE, "lulc_reference.tif")) as ds:
        codes, tr, crs = ds.read(1), ds.transform, ds.crs
    rects, points = draw(codes, seed, per_class)
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    counts = {name: 0 for name, _, _ in CLASSES}
    for layer_name, kind, items in (("polygons", ogr.wkbPolygon, rects),
                                    ("points", ogr.wkbPoint, points)):
        layer = ds.CreateLayer(layer_name, srs, kind)
        layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
        layer.CreateField(ogr.FieldDefn("color", ogr.OFTString))
        for item in items:
            name, colour, _ = CLASSES[item[0]]
            f = ogr.Feature(layer.GetLayerDefn())
            f.SetField("class", name)
            f.SetField("color", colour)
            if kind == ogr.wkbPoint:
                _, r, c = item
                x, y = tr * (c + 0.5, r + 0.5)
                wkt = f"POINT ({x} {y})"
                counts[name] += 1
            else:
                _, r0, c0, r1, c1 = item
                # a user draws inside the area: the outline runs a quarter pixel inside the
                # rectangle's outer pixel edges, so exactly its pixel centres are covered
                xa, ya = tr * (c0 + 0.25, r0 + 0.25)
                xb, yb = tr * (c1 - 0.25, r1 - 0.25)
                wkt = f"POLYGON (({xa} {ya}, {xb} {ya}, {xb} {yb}, {xa} {yb}, {xa} {ya}))"
                counts[name] += (r1 - r0) * (c1 - c0)
            f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
            layer.CreateFeature(f)
        layer = None
    ds = None
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=300)
    args = parser.parse_args(argv)
    counts = write(args.output, args.seed, args.per_class)
    print(", ".join(f"{n} px {c}" for c, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
