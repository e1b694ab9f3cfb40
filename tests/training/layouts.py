"""Small fixtures written in the published layouts of PASTIS-HD and FLAIR-HUB (real files:
numpy .npy, GeoTIFFs with rasterio, GeoPackages with OGR), with pixel values that encode
their date index so the tests can check which date a reader picked."""
from __future__ import annotations

import json
import os

import numpy as np
import rasterio
from rasterio.transform import from_origin


def write_pastis(root: str, ids=(10001, 10002), t_s2: int = 20, t_s1: int = 6) -> dict:
    """Two PASTIS-HD patches; S2 value at date i = (i + 1) * 100 (all bands, all pixels)."""
    rng = np.random.default_rng(0)
    feats, truth = [], {}
    for k, pid in enumerate(ids):
        s2_dates = {str(i): int((np.datetime64("2018-09-01") + 9 * i).astype(object)
                                .strftime("%Y%m%d")) for i in range(t_s2)}
        s1_dates = {str(i): int((np.datetime64("2018-09-03") + 30 * i).astype(object)
                                .strftime("%Y%m%d")) for i in range(t_s1)}
        feats.append({"type": "Feature", "geometry": None,
                      "properties": {"ID_PATCH": pid, "Fold": k + 1, "dates-S2": s2_dates,
                                     "dates-S1A": s1_dates, "dates-S1D": s1_dates}})
        s2 = np.broadcast_to(((np.arange(t_s2) + 1) * 100.0)[:, None, None, None],
                             (t_s2, 10, 128, 128)).astype(np.int16)
        for folder, prefix, arr in (("DATA_S2", "S2", s2),
                                    ("DATA_S1A", "S1A", rng.random((t_s1, 3, 128, 128),
                                                                   dtype=np.float32)),
                                    ("DATA_S1D", "S1D", rng.random((t_s1, 3, 128, 128),
                                                                   dtype=np.float32))):
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            np.save(os.path.join(root, folder, f"{prefix}_{pid}.npy"), arr)
        target = np.zeros((3, 128, 128), np.uint8)
        target[0] = rng.integers(0, 20, (128, 128))
        os.makedirs(os.path.join(root, "ANNOTATIONS"), exist_ok=True)
        np.save(os.path.join(root, "ANNOTATIONS", f"TARGET_{pid}.npy"), target)
        spot_dir = os.path.join(root, "DATA_SPOT", "PASTIS_SPOT6_RVB_1M00_2019")
        os.makedirs(spot_dir, exist_ok=True)
        spot = rng.integers(0, 256, (3, 1280, 1280), dtype=np.uint8)
        with rasterio.open(os.path.join(spot_dir, f"SPOT6_RVB_1M00_2019_{pid}.tif"), "w",
                           driver="GTiff", width=1280, height=1280, count=3, dtype="uint8",
                           crs="EPSG:2154", transform=from_origin(700000, 6600000, 1, 1)) as d:
            d.write(spot)
        truth[pid] = {"target": target[0], "spot": spot}
    with open(os.path.join(root, "metadata.geojson"), "w") as f:
        json.dump({"type": "FeatureCollection", "features": feats}, f)
    for split, pid in (("train", ids[0]), ("val", ids[1]), ("test", ids[1])):
        with open(os.path.join(root, f"{split}.csv"), "w") as f:
            f.write(f"image\n{pid}\n")
    return truth


def _gpkg(path: str, rows: list[tuple[str, str]], field: str) -> None:
    from osgeo import ogr

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer("dates", geom_type=ogr.wkbNone)
    layer.CreateField(ogr.FieldDefn("patch_id", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTString))
    for pid, value in rows:
        feat = ogr.Feature(layer.GetLayerDefn())
        feat.SetField("patch_id", pid)
        feat.SetField(field, value)
        layer.CreateFeature(feat)
    ds = None


def _tif(path: str, arr: np.ndarray, res: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype, crs="EPSG:2154",
                       transform=from_origin(800000, 6500000, res, res)) as d:
        d.write(arr)


def write_flair(root: str, t_s2: int = 20, cloudy=(0, 1, 2, 3, 4)) -> dict:
    """Two FLAIR-HUB patches of one zone; S2 value at date i = (i + 1) * 100; the dates in
    ``cloudy`` carry a cloud mask of 80."""
    rng = np.random.default_rng(1)
    domain, area = "D004-2021", "AA-S1-32"
    pids = [f"{domain}_{area}_{pos}" for pos in ("1-1", "1-2")]
    truth = {}
    for pid in pids:
        pos = pid.split("_")[2]

        def path(mod):
            return os.path.join(root, f"{domain}_{mod}", area, f"{domain}_{mod}_{area}_{pos}.tif")

        rgbi = rng.integers(0, 256, (4, 512, 512), dtype=np.uint8)
        _tif(path("AERIAL_RGBI"), rgbi, 0.2)
        _tif(path("DEM_ELEV"), rng.uniform(100, 200, (2, 512, 512)).astype(np.float32), 0.2)
        s2 = np.repeat(((np.arange(t_s2) + 1) * 100).astype(np.uint16), 10)
        _tif(path("SENTINEL2_TS"), np.broadcast_to(s2[:, None, None], (t_s2 * 10, 10, 10)).copy(),
             10.24)
        msk = np.zeros((t_s2, 2, 10, 10), np.uint8)
        for i in cloudy:
            msk[i, 1, 3, 3] = 80
        _tif(path("SENTINEL2_MSK-SC"), msk.reshape(t_s2 * 2, 10, 10), 10.24)
        for mod in ("SENTINEL1-ASC_TS", "SENTINEL1-DESC_TS"):
            _tif(path(mod), rng.uniform(0.01, 0.5, (6 * 2, 10, 10)).astype(np.float32), 10.24)
        label = rng.integers(0, 19, (1, 512, 512), dtype=np.uint8)
        _tif(path("AERIAL_LABEL-COSIA"), label, 0.2)
        truth[pid] = {"rgbi": rgbi, "label": label[0]}
    zone = f"{domain}_{area}"

    def day(i, step):
        return (np.datetime64("2021-01-05") + step * i).astype(object).strftime("%Y%m%d")

    mtd = os.path.join(root, "GLOBAL_ALL_MTD")
    _gpkg(os.path.join(mtd, "GLOBAL_AERIAL_MTD_DATES.gpkg"), [(p, "20210615") for p in pids],
          "date")
    _gpkg(os.path.join(mtd, "GLOBAL_SENTINEL2_MTD_DATES.gpkg"),
          [(f"{zone}_ignored", json.dumps({str(i + 1): day(i, 15) for i in range(t_s2)}))],
          "acquisition_dates")
    for name in ("SENTINEL1-ASC", "SENTINEL1-DESC"):
        _gpkg(os.path.join(mtd, f"GLOBAL_{name}_MTD_DATES.gpkg"),
              [(f"{zone}_x", json.dumps({str(i + 1): day(i, 50) for i in range(6)}))],
              "acquisition_dates")
    for split, rows in (("train", pids), ("val", pids[1:]), ("test", pids[1:])):
        with open(os.path.join(root, f"{split}.csv"), "w") as f:
            f.write("patch_id\n" + "\n".join(rows) + "\n")
    return truth
