"""Convert two shared TreeSatAI-TS samples into bundled GeoTIFFs (the classification side).

``python -m training.recipes.treesatai_sample`` writes, per sample, under
``resources/sample/treesatai/<aerial stem>/``:

- ``aerial.tif``: the 0.2 m orthophoto, copied as it is (EPSG:25832, 304 x 304 px, 4 bands
  uint8, file band order IR, G, B, R per torchgeo);
- ``S2_L2A_YYYYMMDD.tif``: 16 Sentinel-2 L2A dates (10 bands B02 ... B12, UInt16 digital
  numbers, nodata 0), chosen as MAESTRO's evaluation does (16 bins, cloud-free first;
  training-loop's ``select_dates``), 6 x 6 px at 10 m;
- ``S1_ASC_YYYYMMDD.tif``, ``S1_DESC_YYYYMMDD.tif``: 4 Sentinel-1 dates per orbit (VV, VH,
  Float32 linear backscatter, NaN = nodata);
- ``labels.json``: the genus area fractions and the aerial date from the split CSV.

The HDF5 series carry no georeferencing: their 60 m x 60 m grid is placed on the centre of
the aerial image's footprint (60.8 m), which is how the dataset pairs them. Dates come from
the product names (``..._YYYYMMDDTHHMMSS_...``) and go into the file names and the GDAL tag
``ACQUISITIONDATETIME``.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys

import numpy as np

from .sample_data import ROOT, S2_BANDS

SOURCE = os.path.join(os.path.dirname(ROOT), "shared", "data", "treesatai-ts-samples")
OUT = os.path.join(ROOT, "resources", "sample", "treesatai")
#: One birch and one oak plot (both 2019).
SAMPLES = ("Betula_spec._1_15679_WEFL_NLF", "Quercus_robur_3_86918_WEFL_NLF")
SERIES = {"S2_L2A": ("sen-2-data", "sen-2-products", "sen-2-masks", 16, S2_BANDS),
          "S1_ASC": ("sen-1-asc-data", "sen-1-asc-products", None, 4, ["VV", "VH"]),
          "S1_DESC": ("sen-1-des-data", "sen-1-des-products", None, 4, ["VV", "VH"])}


def product_time(product: bytes | str):
    """Acquisition start of a Sentinel product name (first ``YYYYMMDDTHHMMSS`` field)."""
    import datetime as dt

    name = product.decode() if isinstance(product, bytes) else product
    for part in name.split("_"):
        if len(part) == 15 and part[8] == "T" and part[:8].isdigit():
            return dt.datetime.strptime(part, "%Y%m%dT%H%M%S")
    raise ValueError(f"no acquisition time in product name {name!r}")


def _rows() -> dict[str, dict]:
    rows = {}
    for split in ("train", "val", "test"):
        with open(os.path.join(SOURCE, f"{split}.csv"), newline="") as fh:
            for row in csv.DictReader(fh):
                rows[row["aerial_name"][:-4]] = row
    return rows


def convert(out: str = OUT) -> list[str]:
    import h5py
    import rasterio
    from rasterio.transform import from_origin

    from training.datasets.selection import cloudy_dates, select_dates

    rows = _rows()
    written = []
    for stem in SAMPLES:
        row = rows[stem]
        folder = os.path.join(out, stem)
        os.makedirs(folder, exist_ok=True)
        aerial = os.path.join(SOURCE, "aerial", row["aerial_name"])
        shutil.copy(aerial, os.path.join(folder, "aerial.tif"))
        written.append(os.path.join(folder, "aerial.tif"))
        with rasterio.open(aerial) as ds:
            crs, b = ds.crs, ds.bounds
        cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
        with h5py.File(os.path.join(SOURCE, "sentinel-ts", row["sen_name"]), "r") as h5:
            for prefix, (key, products, masks, count, bands) in SERIES.items():
                data = h5[key][()]                                        # [T, C, 6, 6]
                cloudy = cloudy_dates(h5[masks][()], 0.0) if masks else None
                keep = select_dates(data, count, None, cloudy)
                size = data.shape[-1]
                transform = from_origin(cx - size * 5.0, cy + size * 5.0, 10.0, 10.0)
                for i in keep:
                    when = product_time(h5[products][i])
                    path = os.path.join(folder, f"{prefix}_{when:%Y%m%d}.tif")
                    s2 = prefix.startswith("S2")
                    pixels = (np.clip(np.rint(data[i]), 1, 65535).astype(np.uint16) if s2
                              else data[i].astype(np.float32))
                    with rasterio.open(path, "w", driver="GTiff", width=size, height=size,
                                       count=len(bands), dtype=pixels.dtype, crs=crs,
                                       transform=transform,
                                       nodata=0 if s2 else float("nan")) as ds:
                        ds.write(pixels)
                        for j, name in enumerate(bands, start=1):
                            ds.set_band_description(j, name)
                        ds.update_tags(ACQUISITIONDATETIME=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                       PRODUCT=h5[products][i].decode())
                    written.append(path)
        labels = {k: float(v) for k, v in row.items()
                  if k not in ("aerial_name", "sen_name", "aerial_date")}
        with open(os.path.join(folder, "labels.json"), "w") as fh:
            json.dump({"aerial_date": row["aerial_date"], "genus_area_fraction": labels}, fh,
                      indent=1)
        written.append(os.path.join(folder, "labels.json"))
    return written


if __name__ == "__main__":
    for p in convert(*sys.argv[1:2]):
        print(p)
