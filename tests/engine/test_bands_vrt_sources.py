"""Band names from a VRT's source files (new-user trial, round 2): an analyst stacks one
single-band GeoTIFF per Sentinel-2 band with ``gdalbuildvrt -separate S2_<date>.vrt
sb/T33TVM_<date>T100008_B*.tif``; the shell glob orders the files B02..B08, B11, B12, B8A, the
VRT's bands have no descriptions, and the engine took them by position: a plausible, wrong map
with exit 0. Each VRT band's source file names its band (``_B8A.tif``), so the engine names
the bands from them (engine/preprocessing/bands.py).

Real data: the bundled sample (resources/sample, ten described bands per date) written one band
per GeoTIFF by rasterio (no descriptions, no ``BANDS`` tag), stacked with GDAL's own
``gdal.BuildVRT(separate=True)``, run with the bundled model through ``engine.api.run_model``.
"""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from engine.api import RunOptions, run_model
from engine.contract import read_model_metadata
from engine.preprocessing.bands import (FROM_VRT_SOURCES, derive_source_names, match_bands,
                                        raster_band_names, vrt_band_sources)
from engine.stack import open_slice
from tests.conftest import ROOT

SAMPLE = os.path.join(ROOT, "resources", "sample")
MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
S2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
DEM = os.path.join(SAMPLE, "dem.tif")
BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
#: What ``ls T33TVM_*_B*.tif`` (and Python's sorted glob) gives.
GLOB_ORDER = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12", "B8A"]


def _date(path: str) -> str:
    return os.path.basename(path).split("_")[2][:8]


@pytest.fixture(scope="module")
def band_files(tmp_path_factory):
    """``sb/T33TVM_<date>T100008_<band>.tif``: each band of each sample date in its own
    GeoTIFF, pixels and georeferencing as in the sample, no description, no tags."""
    out = tmp_path_factory.mktemp("bands") / "sb"
    out.mkdir()
    for path in S2:
        with rasterio.open(path) as src:
            assert list(src.descriptions) == BANDS
            data, prof = src.read(), src.profile.copy()
        prof.update(count=1)
        for k, band in enumerate(BANDS):
            with rasterio.open(out / f"T33TVM_{_date(path)}T100008_{band}.tif", "w",
                               **prof) as dst:
                dst.write(data[k:k + 1])
    return out


def build_vrt(dst, files) -> str:
    """``gdalbuildvrt -separate dst files...`` (GDAL's own builder)."""
    ds = gdal.BuildVRT(str(dst), [str(f) for f in files], separate=True)
    assert ds is not None and ds.RasterCount == len(files)
    ds = None                                        # noqa: F841 (closing writes the VRT)
    return str(dst)


def stacks(band_files, folder, order=None):
    """One VRT per date, ``S2_<date>.vrt``: the shell glob's order (``order=None``) or the
    given band order."""
    folder.mkdir(exist_ok=True)
    paths = []
    for path in S2:
        date = _date(path)
        if order is None:
            files = sorted(glob.glob(str(band_files / f"T33TVM_{date}T100008_B*.tif")))
        else:
            files = [band_files / f"T33TVM_{date}T100008_{b}.tif" for b in order]
        paths.append(build_vrt(folder / f"S2_{date}.vrt", files))
    return paths


def run_map(s2, out):
    report = run_model(MODEL, {"s2": s2, "dem": [DEM]}, str(out), RunOptions(cog=False))
    with rasterio.open(report.output_path) as src:
        return src.read(1), report


def test_glob_ordered_vrt_gives_the_samples_map(band_files, tmp_path):
    """The glob-ordered VRTs (B8A last), the right-ordered VRTs and the sample itself give the
    same map, pixel for pixel, and the log says the names come from the source files.

    Before the fix the glob-ordered VRTs were read by position (B11 as B8A, B12 as B11, B8A as
    B12): 26.2 % of the map's pixels differed from the sample's (73.8 % equal; the tester
    measured accuracy 87.6 -> 73.7 % against the reference), with one info line and exit 0."""
    base, _ = run_map(S2, tmp_path / "base.tif")
    assert len(np.unique(base)) >= 3                     # a real map, not one class
    globbed = stacks(band_files, tmp_path / "glob")
    with rasterio.open(globbed[0]) as src:
        assert src.descriptions == (None,) * 10 and "BANDS" not in src.tags()
        assert [os.path.basename(f).rsplit("_", 1)[1][:-4] for f in src.files[1:]] == GLOB_ORDER
    straight = stacks(band_files, tmp_path / "right", BANDS)

    glob_map, glob_report = run_map(globbed, tmp_path / "glob.tif")
    right_map, right_report = run_map(straight, tmp_path / "right.tif")
    differ = 100.0 * float(np.mean(glob_map != base))
    assert differ == 0.0, f"{differ:.1f} % of the pixels differ from the sample's map"
    assert np.array_equal(right_map, base)

    line = next(m for m in glob_report.messages if "VRT source file names" in m)
    assert "reading raster bands 1, 2, 3, 4, 5, 6, 7, 10, 8, 9 of 10" in line
    assert "S2_20150711.vrt" in line and "warning" not in line
    assert not any("by position" in m for m in glob_report.messages)
    line = next(m for m in right_report.messages if "VRT source file names" in m)
    assert "in the model's order" in line and "warning" not in line


def test_names_from_vrt_sources_all_partial_duplicate(band_files, tmp_path):
    """Names derived only when each band gets its own: a source named without its band, or
    two sources of the same band, leave the bands to position with a warning naming them."""
    spec = read_model_metadata(MODEL).modality("s2")
    date = _date(S2[0])

    def f(band):
        return band_files / f"T33TVM_{date}T100008_{band}.tif"

    # all: every band named, once
    path = build_vrt(tmp_path / f"all_S2_{date}.vrt", [f(b) for b in GLOB_ORDER])
    with rasterio.open(path) as src:
        names = raster_band_names(src)
    assert list(names) == GLOB_ORDER and names.origin == FROM_VRT_SOURCES and not names.warnings
    assert open_slice(path, spec).indexes == (1, 2, 3, 4, 5, 6, 7, 10, 8, 9)

    # partial: B8A's file renamed without a band token (nir_narrow.tif)
    renamed = tmp_path / "nir_narrow.tif"
    os.link(f("B8A"), renamed)
    path = build_vrt(tmp_path / f"part_S2_{date}.vrt",
                     [f(b) for b in GLOB_ORDER[:-1]] + [renamed])
    with rasterio.open(path) as src:
        names = raster_band_names(src)
    assert list(names) == [None] * 10 and names.origin is None
    sl = open_slice(path, spec)
    assert sl.indexes == tuple(range(1, 11))
    note = sl.notes[0]
    assert note.startswith("warning:") and "band 10 (nir_narrow.tif) name no Sentinel-2 band" \
        in note and "taken by position" in note

    # duplicate: B11 listed twice (and B12 left out)
    path = build_vrt(tmp_path / f"dup_S2_{date}.vrt", [f(b) for b in BANDS[:8]] + [f("B11")] * 2)
    sl = open_slice(path, spec)
    assert sl.indexes == tuple(range(1, 11))
    assert sl.notes[0].startswith("warning:") and \
        f"band 9 (T33TVM_{date}T100008_B11.tif), band 10 (T33TVM_{date}T100008_B11.tif) all " \
        "name B11" in sl.notes[0] and "taken by position" in sl.notes[0]


def test_derivation_rules_on_vrt_xml():
    """The pure rules: file names as written (relative, Windows separators), band 1 of each
    source only, every source of a mosaicked band naming the same band."""
    xml = """<VRTDataset rasterXSize="2" rasterYSize="2">
      <VRTRasterBand dataType="UInt16" band="1">
        <ComplexSource><SourceFilename relativeToVRT="1">sb\\T_B8A.tif</SourceFilename>
          <SourceBand>1</SourceBand></ComplexSource>
      </VRTRasterBand>
      <VRTRasterBand dataType="UInt16" band="2">
        <SimpleSource><SourceFilename>/d/a_B02.tif</SourceFilename></SimpleSource>
        <SimpleSource><SourceFilename>/d/b_B02.tif</SourceFilename></SimpleSource>
      </VRTRasterBand>
      <VRTRasterBand dataType="UInt16" band="3">
        <SimpleSource><SourceFilename>/d/x_B03.tif</SourceFilename>
          <SourceBand>2</SourceBand></SimpleSource>
      </VRTRasterBand>
      <VRTRasterBand dataType="UInt16" band="4">
        <SimpleSource><SourceFilename>/d/a_B04.tif</SourceFilename></SimpleSource>
        <SimpleSource><SourceFilename>/d/b_B05.tif</SourceFilename></SimpleSource>
      </VRTRasterBand>
    </VRTDataset>"""
    sources = vrt_band_sources(xml)
    assert sources[1] == [("sb\\T_B8A.tif", "1")] and len(sources[2]) == 2
    names, warning = derive_source_names([sources[1], sources[2]])
    assert names == ["B8A", "B02"] and warning is None
    names, warning = derive_source_names([sources[i] for i in (1, 2, 3, 4)])
    assert names is None and warning and "band 3 (x_B03.tif); band 4 (a_B04.tif, b_B05.tif) " \
        "name no Sentinel-2 band" in warning
    assert derive_source_names([[("/d/dem.tif", "1")]]) == (None, None)
    assert vrt_band_sources("not xml") == {}


def test_names_that_disagree_are_named_in_a_warning(band_files, tmp_path):
    """A stale dataset ``BANDS`` tag against per-band names: the per-band names are used (they
    move with the band), and the warning names both lists. A stale tag with nothing else to
    compare with (a rasterio copy that reordered the bands) cannot be seen in the file."""
    spec = read_model_metadata(MODEL).modality("s2")
    date = _date(S2[0])
    path = build_vrt(tmp_path / f"tag_S2_{date}.vrt",
                     [band_files / f"T33TVM_{date}T100008_{b}.tif" for b in GLOB_ORDER])
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetMetadataItem("BANDS", ",".join(BANDS))
    ds = None                                        # noqa: F841 (closing writes the VRT)
    sl = open_slice(path, spec)
    assert sl.indexes == (1, 2, 3, 4, 5, 6, 7, 10, 8, 9)
    assert "warning: the VRT source file names (B02, B03, B04, B05, B06, B07, B08, B11, B12, " \
        "B8A) and the dataset tag BANDS (B02, B03, B04, B05, B06, B07, B08, B8A, B11, B12) " \
        "name bands 8, 9, 10 differently: the VRT source file names are used" in sl.notes[0]

    rev = str(tmp_path / "rev.tif")
    with rasterio.open(S2[0]) as src:
        data, prof, tags = np.ascontiguousarray(src.read()[::-1]), src.profile.copy(), src.tags()
    with rasterio.open(rev, "w", **prof) as dst:
        dst.write(data)
        dst.update_tags(**tags)                      # BANDS=B02,...,B12: now stale
        dst.descriptions = tuple(BANDS[::-1])
    with rasterio.open(rev) as src:
        names = raster_band_names(src)
    m = match_bands(names, BANDS, path=rev, modality="s2")
    assert m.indexes == tuple(range(10, 0, -1))
    assert m.note and m.note.startswith("warning: the band descriptions (B12, B11") and \
        "name bands 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 differently" in m.note


def test_refusal_does_not_suggest_removing_the_names(tmp_path):
    """Names the model does not know: the refusal asks for the right names, not for removing
    them (a raster without names is read by position, unchecked: the trap of the trial)."""
    from engine.errors import InputError

    with pytest.raises(InputError) as err:
        match_bands(["b", "g", "r"], ["B02", "B03", "B04"], path="x.tif", modality="s2")
    text = str(err.value)
    assert "remove the names" not in text and "Give each band the name of the band" in text
