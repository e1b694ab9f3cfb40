"""Convert the shared eo-learn Slovenia patch into the bundled sample GeoTIFFs.

``python -m training.recipes.sample_data [SHARED_DIR] [OUT_DIR]`` writes, under
``resources/sample/`` by default:

- ``S2_L1C_YYYYMMDD.tif``: one Sentinel-2 L1C scene per date, the 10 bands the model uses
  (``S2_BANDS``), UInt16 digital numbers = top-of-atmosphere reflectance x 10000, nodata 0;
  the acquisition time in the GDAL tags ``ACQUISITIONDATETIME`` (ISO 8601, UTC) and
  ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``) and the date in the file name.
- ``dem.tif``: elevation, Float32, metres.
- ``lulc_reference.tif``: the land-cover reference, UInt8 with the eo-learn class codes
  (0 = no data), a colour table and the class names.

Facts about the source arrays (shapes, band order, which timestamp each scene is) come from
``shared/data/eolearn-slovenia-lulc/ATTRIBUTION.md``; the scene -> date mapping was checked
there by recomputing NDVI, and :func:`scene_dates` re-checks it on every conversion.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys

import numpy as np

#: Band order of ``s2_l1c_reference_scenes.npy`` (13 L1C bands, all at 10 m).
L1C_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
             "B11", "B12"]
#: The 10 bands the model takes (MAESTRO's S2 set; TreeSatAI-TS has exactly these).
S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
#: Reflectance -> digital number (Sentinel-2's QUANTIFICATION_VALUE).
QUANTIFICATION = 10000
CRS = "EPSG:32633"

#: eo-learn land-use/land-cover codes, names and colours (eo-learn's LULC example).
LULC_CLASSES = {
    1: ("cultivated land", "#ffff00"), 2: ("forest", "#054907"), 3: ("grassland", "#ffa500"),
    4: ("shrubland", "#806000"), 5: ("water", "#069af3"), 6: ("wetlands", "#95d0fc"),
    7: ("tundra", "#967bb6"), 8: ("artificial surface", "#dc143c"), 9: ("bareland", "#a6a6a6"),
    10: ("snow and ice", "#000000"),
}

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "eolearn-slovenia-lulc")
DEFAULT_OUT = os.path.join(ROOT, "resources", "sample")


def load_source(src: str) -> dict:
    """The shared arrays: ``s2`` [5, 101, 100, 13] float32 reflectance, ``ndvi`` [68, H, W],
    ``dem`` [H, W] m, ``lulc`` [H, W] uint16 codes, ``timestamps`` (68 ISO strings),
    ``bounds`` (xmin, ymin, xmax, ymax) in EPSG:32633."""
    with open(os.path.join(src, "bbox.geojson")) as fh:
        ring = json.load(fh)["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    with open(os.path.join(src, "timestamps.json")) as fh:
        stamps = json.load(fh)
    return {
        "s2": np.load(os.path.join(src, "s2_l1c_reference_scenes.npy")),
        "ndvi": np.load(os.path.join(src, "ndvi.npy"))[..., 0],
        "dem": np.load(os.path.join(src, "dem.npy"))[..., 0],
        "lulc": np.load(os.path.join(src, "lulc.npy"))[..., 0],
        "timestamps": stamps,
        "bounds": (min(xs), min(ys), max(xs), max(ys)),
    }


def scene_dates(s2: np.ndarray, ndvi: np.ndarray, stamps: list[str]) -> list[dt.datetime]:
    """Acquisition time of each scene, found by matching its NDVI (B08, B04) to the series.

    Raises:
        ValueError: a scene matches no date or several.
    """
    b4, b8 = L1C_BANDS.index("B04"), L1C_BANDS.index("B08")
    out = []
    for i, scene in enumerate(s2):
        nd = (scene[..., b8] - scene[..., b4]) / (scene[..., b8] + scene[..., b4])
        hits = [k for k in range(len(stamps)) if np.allclose(nd, ndvi[k], atol=1e-6)]
        if len(hits) != 1:
            raise ValueError(f"scene {i}: NDVI matches dates {hits}, expected exactly one")
        out.append(dt.datetime.fromisoformat(stamps[hits[0]]))
    return out


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance (0-1) -> UInt16 DN; 0 is kept free for nodata (clipped to >= 1)."""
    return np.clip(np.rint(reflectance * QUANTIFICATION), 1, 65535).astype(np.uint16)


def _profile(transform, count: int, dtype: str, nodata) -> dict:
    h, w = 101, 100
    return {"driver": "GTiff", "height": h, "width": w, "count": count, "dtype": dtype,
            "crs": CRS, "transform": transform, "nodata": nodata, "compress": "deflate",
            "predictor": 2 if dtype != "float32" else 3, "interleave": "pixel"}


def write_s2(path: str, dn: np.ndarray, when: dt.datetime, transform) -> None:
    """Write one date: ``dn`` [H, W, 10] uint16."""
    import rasterio

    prof = _profile(transform, dn.shape[-1], "uint16", 0)
    prof.update(height=dn.shape[0], width=dn.shape[1])
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(np.moveaxis(dn, -1, 0))
        for b, name in enumerate(S2_BANDS, start=1):
            ds.set_band_description(b, name)
        ds.update_tags(ACQUISITIONDATETIME=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       TIFFTAG_DATETIME=when.strftime("%Y:%m:%d %H:%M:%S"),
                       SPACECRAFT_NAME="Sentinel-2A", PRODUCT_TYPE="S2MSI1C",
                       PROCESSING_LEVEL="Level-1C", QUANTIFICATION_VALUE=str(QUANTIFICATION),
                       BANDS=",".join(S2_BANDS))


def write_dem(path: str, dem: np.ndarray, transform) -> None:
    import rasterio

    prof = _profile(transform, 1, "float32", -9999.0)
    prof.update(height=dem.shape[0], width=dem.shape[1])
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(dem.astype(np.float32), 1)
        ds.set_band_description(1, "elevation")
        ds.update_tags(UNITS="metre")
        ds.update_tags(1, UNITS="metre")


def write_reference(path: str, lulc: np.ndarray, transform) -> None:
    """UInt8 class codes with the colour table and the class names (GDAL category names)."""
    import rasterio
    from osgeo import gdal

    prof = _profile(transform, 1, "uint8", 0)
    prof.update(height=lulc.shape[0], width=lulc.shape[1])
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(lulc.astype(np.uint8), 1)
        ds.set_band_description(1, "land cover (eo-learn LULC codes)")
        cmap = {0: (0, 0, 0, 0)}
        for code, (_, color) in LULC_CLASSES.items():
            cmap[code] = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5)) + (255,)
        ds.write_colormap(1, cmap)
    names = ["no data"] + [LULC_CLASSES[c][0] for c in sorted(LULC_CLASSES)]
    handle = gdal.Open(path, gdal.GA_Update)
    handle.GetRasterBand(1).SetCategoryNames(names)
    handle = None


def convert(src: str = DEFAULT_SHARED, out: str = DEFAULT_OUT) -> list[str]:
    """Write the sample GeoTIFFs; returns their paths."""
    from rasterio.transform import from_bounds

    data = load_source(src)
    s2 = data["s2"]
    _, h, w, _ = s2.shape
    # Sentinel Hub delivers the bbox divided into w x h pixels: about 9.995 m, not exactly 10 m.
    transform = from_bounds(*data["bounds"], width=w, height=h)
    os.makedirs(out, exist_ok=True)
    paths = []
    keep = [L1C_BANDS.index(b) for b in S2_BANDS]
    for scene, when in sorted(zip(s2, scene_dates(s2, data["ndvi"], data["timestamps"])),
                              key=lambda item: item[1]):
        path = os.path.join(out, f"S2_L1C_{when:%Y%m%d}.tif")
        write_s2(path, to_dn(scene[..., keep]), when, transform)
        paths.append(path)
    paths.append(os.path.join(out, "dem.tif"))
    write_dem(paths[-1], data["dem"], transform)
    paths.append(os.path.join(out, "lulc_reference.tif"))
    write_reference(paths[-1], data["lulc"], transform)
    return paths


def sample_s2_paths(sample_dir: str = DEFAULT_OUT) -> list[str]:
    """The bundled S2 scenes, sorted by date."""
    return sorted(os.path.join(sample_dir, f) for f in os.listdir(sample_dir)
                  if f.startswith("S2_L1C_") and f.endswith(".tif"))


if __name__ == "__main__":
    for p in convert(*sys.argv[1:3]):
        print(p)
