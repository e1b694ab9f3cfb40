"""build_stack on a product's files as an analyst globs them (a new-user trial: the true-colour
TCI file and a Level-2A product's R10m/R20m/R60m copies of a band were refused): other layers
are skipped with a log line, a band at several resolutions keeps its finest file. Real sample
bands written by rasterio with Sentinel-2 Level-2A file names."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import rasterio

from engine.errors import InputError
from engine.sentinel2 import build_stack
from tests.conftest import ROOT

SAMPLE = sorted(glob.glob(os.path.join(ROOT, "resources", "sample", "S2_L1C_*.tif")))[0]
BANDS = ["B02", "B03", "B04", "B08"]


def _files(folder):
    with rasterio.open(SAMPLE) as src:
        data, profile, names = src.read(), src.profile, list(src.descriptions)
    profile.update(count=1)
    out = []
    for band in BANDS:
        band_data = data[names.index(band)][None]
        for res, factor in (("10m", 1), ("20m", 2)):
            p = dict(profile, width=band_data.shape[2] // factor,
                     height=band_data.shape[1] // factor,
                     transform=profile["transform"] * profile["transform"].scale(factor))
            path = os.path.join(folder, f"T33TVM_20150711T100008_{band}_{res}.tif")
            with rasterio.open(path, "w", **p) as dst:
                dst.write(band_data[:, ::factor, ::factor][:, :p["height"], :p["width"]])
            out.append(path)
    tci = os.path.join(folder, "T33TVM_20150711T100008_TCI_10m.tif")
    with rasterio.open(tci, "w", **dict(profile, count=3, dtype="uint8")) as dst:
        dst.write(np.zeros((3, profile["height"], profile["width"]), np.uint8))
    return out + [tci]


def test_product_files_with_tci_and_several_resolutions(tmp_path):
    (tmp_path / "in").mkdir()
    files = _files(str(tmp_path / "in"))
    lines = []
    vrt, = build_stack(files, BANDS, 10, str(tmp_path / "out"), log=lines.append)
    assert any("skipped 1 file(s) that are not spectral bands" in m and "TCI" in m for m in lines)
    xml = open(vrt, encoding="utf-8").read()
    assert all(f"_{b}_10m.tif" in xml for b in BANDS) and "_20m.tif" not in xml  # the finest
    with rasterio.open(vrt) as v:
        assert v.count == len(BANDS) and abs(v.transform.a - 10.0) < 1e-9


def test_a_band_twice_at_one_resolution_is_still_refused(tmp_path):
    (tmp_path / "in").mkdir()
    files = _files(str(tmp_path / "in"))
    dup = str(tmp_path / "in" / "copy_T33TVM_20150711T100008_B02_10m.tif")
    with rasterio.open(files[0]) as src:
        with rasterio.open(dup, "w", **src.profile) as dst:
            dst.write(src.read())
    with pytest.raises(InputError, match="band B02 of 2015-07-11 is given twice"):
        build_stack(files + [dup], BANDS, 10, str(tmp_path / "out"))
