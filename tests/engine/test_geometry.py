"""Geometry of real inputs (issue 11 item 6): south-up rasters, geographic CRSs, GCP-only
rasters and GDAL source strings, on real GeoTIFFs written by rasterio from resources/sample,
through ``engine.api.run_model`` with the bundled model."""
from __future__ import annotations

import datetime as dt
import glob
import os
import zipfile

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint

from engine.api import RunOptions, SliceInput, run_model
from engine.errors import InputError
from engine.preprocessing.geometry import (ground_pixel_size_m, metres_per_degree, north_up,
                                           pixel_size_warning)
from tests.conftest import ROOT

SAMPLE = os.path.join(ROOT, "resources", "sample")
MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
S2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
DEM = os.path.join(SAMPLE, "dem.tif")


def run_map(inputs, out):
    report = run_model(MODEL, inputs, str(out), RunOptions(cog=False))
    with rasterio.open(report.output_path) as src:
        return src.read(1), src.transform, src.crs, report


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    classes, transform, crs, _ = run_map({"s2": S2, "dem": [DEM]},
                                         tmp_path_factory.mktemp("base") / "base.tif")
    return classes, transform, crs


def equal_pct(a, b) -> float:
    assert a.shape == b.shape
    return 100.0 * float(np.mean(a == b))


def _copy_meta(src, dst):
    dst.update_tags(**src.tags())
    for i, name in enumerate(src.descriptions):
        if name:
            dst.set_band_description(i + 1, name)


def south_up(path, dst):
    """The same raster stored south-up: rows reversed, positive y pixel size."""
    with rasterio.open(path) as src:
        data, t, prof = src.read()[:, ::-1], src.transform, src.profile.copy()
        prof.update(transform=Affine(t.a, 0.0, t.c, 0.0, -t.e, t.f + t.e * src.height))
        with rasterio.open(str(dst), "w", **prof) as out:
            out.write(np.ascontiguousarray(data))
            _copy_meta(src, out)
    with rasterio.open(str(dst)) as check:
        assert check.transform.e > 0
    return str(dst)


def gcp_only(path, dst, crs=True):
    """The same raster georeferenced by 9 GCPs only (no geotransform); ``crs=False``: GCPs
    without their CRS (rasterio cannot write that: GDAL's own binding removes it)."""
    with rasterio.open(path) as src:
        t, h, w = src.transform, src.height, src.width
        gcps = [GroundControlPoint(r, c, *(t * (c, r))) for r in (0, h / 2, h)
                for c in (0, w / 2, w)]
        prof = src.profile.copy()
        prof.pop("transform"), prof.pop("crs")
        with rasterio.open(str(dst), "w", **prof) as out:
            out.write(src.read())
            out.gcps = (gcps, src.crs)
            _copy_meta(src, out)
    if not crs:
        from osgeo import gdal

        ds = gdal.Open(str(dst), gdal.GA_Update)
        ds.SetGCPs(ds.GetGCPs(), "")
        ds = None
        with rasterio.open(str(dst)) as check:
            assert check.gcps[0] and check.gcps[1] is None
    return str(dst)


def each(tmp_path, suffix, make):
    return [make(p, tmp_path / os.path.basename(p).replace(".tif", f"_{suffix}.tif")) for p in S2]


# ----------------------------------------------------------------------------- south-up
def test_south_up_stack_gives_the_same_north_up_map(tmp_path, baseline):
    """Today: refused as 'does not overlap' the reference raster, i.e. itself."""
    classes, transform, crs, _ = run_map({"s2": each(tmp_path, "su", south_up), "dem": [DEM]},
                                         tmp_path / "o.tif")
    assert transform.e < 0 and transform.almost_equals(baseline[1]) and crs == baseline[2]
    assert equal_pct(classes, baseline[0]) == 100.0


def test_south_up_dem_only(tmp_path, baseline):
    classes, _, _, _ = run_map({"s2": S2, "dem": [south_up(DEM, tmp_path / "dem_su.tif")]},
                               tmp_path / "o.tif")
    assert equal_pct(classes, baseline[0]) == 100.0


def test_north_up_equivalent():
    t, flipped = north_up(Affine(10, 0, 100, 0, 10, 500), 20)
    assert flipped and t == Affine(10, 0, 100, 0, -10, 700)
    assert north_up(Affine(10, 0, 100, 0, -10, 700), 20) == (Affine(10, 0, 100, 0, -10, 700), False)


# ----------------------------------------------------------------------------- geographic CRS
def test_metres_per_degree_known_values():
    lon, lat = metres_per_degree(0.0)
    assert lon == pytest.approx(111319.49, abs=0.01)      # a * pi / 180
    assert lat == pytest.approx(110574.28, abs=0.5)       # meridian degree at the equator
    assert metres_per_degree(45.0)[1] == pytest.approx(111131.75, abs=0.5)
    assert metres_per_degree(60.0)[0] == pytest.approx(55799.98, abs=0.5)


def to_crs(path, dst, crs, res=None):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(path) as src:
        t, w, h = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds,
                                              resolution=res)
        prof = src.profile.copy()
        prof.update(crs=crs, transform=t, width=w, height=h)
        with rasterio.open(str(dst), "w", **prof) as out:
            for b in range(1, src.count + 1):
                reproject(rasterio.band(src, b), rasterio.band(out, b),
                          resampling=Resampling.bilinear)
            _copy_meta(src, out)
    return str(dst)


def _warning(path, gsd=10.0):
    with rasterio.open(path) as src:
        return pixel_size_warning(src.crs, src.transform, src.width, src.height, gsd)


def test_pixel_size_check_works_for_geographic_crs(tmp_path):
    """EPSG:4326 at 0.001 deg (~93 m at 45.9 N) warns like the same data in UTM at 100 m;
    the sample in EPSG:4326 at its own resolution (~10 m) does not."""
    coarse = to_crs(S2[0], tmp_path / "s2_4326_coarse.tif", "EPSG:4326", 0.001)
    native = to_crs(S2[0], tmp_path / "s2_4326.tif", "EPSG:4326")
    utm100 = to_crs(S2[0], tmp_path / "s2_utm100.tif", "EPSG:32633", 100.0)
    with rasterio.open(coarse) as src:
        x, y = ground_pixel_size_m(src.crs, src.transform, src.width, src.height)
    assert 77 < x < 78.5 and 110.5 < y < 111.5          # cos(45.9 deg) x 111.3 km / 1000
    assert "pixel is 92.9 m (0.001 x 0.001 degrees at latitude 45.87)" in _warning(coarse)
    assert "pixel is 100 m" in _warning(utm100)
    assert _warning(native) is None and _warning(S2[0]) is None


def test_geographic_stack_runs(tmp_path, baseline):
    """The sample warped to EPSG:4326 runs (output in EPSG:4326) and its map, warped back
    with nearest neighbour, agrees with the UTM run on most pixels."""
    from rasterio.warp import Resampling, reproject

    files = each(tmp_path, "4326", lambda p, d: to_crs(p, d, "EPSG:4326"))
    classes, transform, crs, _ = run_map({"s2": files, "dem": [DEM]}, tmp_path / "o.tif")
    assert crs == rasterio.crs.CRS.from_epsg(4326)
    back = np.full(baseline[0].shape, 255, np.uint8)
    reproject(classes, back, src_transform=transform, src_crs=crs, dst_transform=baseline[1],
              dst_crs=baseline[2], resampling=Resampling.nearest, src_nodata=255, dst_nodata=255)
    inner = back[4:-4, 4:-4] != 255
    agree = float(np.mean(back[4:-4, 4:-4][inner] == baseline[0][4:-4, 4:-4][inner]))
    assert inner.mean() > 0.9 and agree > 0.8


# ----------------------------------------------------------------------------- GCPs
def test_gcp_only_rasters_are_warped_with_their_gcps(tmp_path, baseline):
    """Today: refused with advice to assign a CRS."""
    classes, transform, _, report = run_map({"s2": each(tmp_path, "gcp", gcp_only), "dem": [DEM]},
                                            tmp_path / "o.tif")
    assert classes.shape == baseline[0].shape and transform.e < 0
    assert equal_pct(classes, baseline[0]) >= 99.5
    classes, _, _, _ = run_map({"s2": S2, "dem": [gcp_only(DEM, tmp_path / "dem_gcp.tif")]},
                               tmp_path / "o2.tif")
    assert equal_pct(classes, baseline[0]) >= 99.5


def test_gcps_without_crs_get_the_right_advice(tmp_path):
    path = gcp_only(S2[0], tmp_path / "S2_20150711_gcp_nocrs.tif", crs=False)
    with pytest.raises(InputError, match=r"gcp_nocrs.tif' \(s2\) has ground control points but no "
                                         r"CRS for them.*gdal_translate -a_srs.*gdalwarp"):
        run_map({"s2": [path], "dem": [DEM]}, tmp_path / "o.tif")


# ----------------------------------------------------------------------------- source strings
def test_gdal_source_strings_are_accepted(tmp_path, baseline):
    """As QGIS layers give them: a /vsizip/ path, a VRT XML string, a GDAL-provider URI with
    an open option after '|', NETCDF:"f.nc":var."""
    from rasterio.shutil import copy as rio_copy

    archive = tmp_path / "s2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(S2[0], os.path.basename(S2[0]))
    vsizip = f"/vsizip/{archive}/{os.path.basename(S2[0])}"
    vrt = str(tmp_path / "one.vrt")
    rio_copy(S2[1], vrt, driver="VRT")
    with open(vrt) as fh:
        xml = fh.read()
    assert xml.lstrip().startswith("<VRTDataset") and "ACQUISITIONDATETIME" in xml
    nc = str(tmp_path / "dem.nc")
    rio_copy(DEM, nc, driver="netCDF")
    inputs = {"s2": [vsizip, xml] + S2[2:], "dem": [f'NETCDF:"{nc}":Band1']}
    classes, _, _, report = run_map(inputs, tmp_path / "o.tif")
    assert equal_pct(classes, baseline[0]) == 100.0
    assert report.dates["s2"][:2] == ["2015-07-11", "2015-07-31"]   # tags through both
    # the QGIS URI form: dated explicitly in both runs (the date reader opens plain sources)
    day = dt.date(2015, 8, 20)
    plain, _, _, _ = run_map({"s2": S2[:2] + [SliceInput(S2[2], day)] + S2[3:], "dem": [DEM]},
                             tmp_path / "plain.tif")
    uri, _, _, _ = run_map({"s2": S2[:2] + [SliceInput(S2[2] + "|option:NUM_THREADS=1", day)]
                            + S2[3:], "dem": [DEM]}, tmp_path / "uri.tif")
    assert equal_pct(uri, plain) == 100.0


def test_missing_file_and_unreadable_source_string(tmp_path):
    with pytest.raises(InputError, match=r"input raster for 's2' not found: '.*nothere.tif'"):
        run_map({"s2": [str(tmp_path / "nothere.tif")], "dem": [DEM]}, tmp_path / "o.tif")
    with pytest.raises(InputError, match=r"input raster for 'dem' cannot be read: 'NETCDF:"):
        run_map({"s2": S2, "dem": [f'NETCDF:"{tmp_path}/none.nc":Band1']}, tmp_path / "o.tif")


def test_south_up_raster_off_the_grid_is_warped_like_its_north_up_twin(tmp_path):
    """A DEM shifted off the model grid (warped, not read directly), stored north-up and
    south-up: the warped reads are identical."""
    from engine.align import SliceReader, model_grid
    from engine.contract import read_model_metadata
    from engine.stack import open_slice

    spec = read_model_metadata(MODEL).modality("dem")
    with rasterio.open(DEM) as src:
        data, t, prof = src.read(), src.transform, src.profile.copy()
    shifted = Affine(t.a, 0.0, t.c + 3.3, 0.0, t.e, t.f - 4.1)
    prof.update(transform=shifted)
    north = str(tmp_path / "dem_north.tif")
    with rasterio.open(north, "w", **prof) as dst:
        dst.write(data)
    south = south_up(north, tmp_path / "dem_south.tif")
    ref = open_slice(DEM, spec)
    grid = model_grid(ref.crs, ref.transform, 128, 128, 32, 32)
    readers = [SliceReader(open_slice(p, spec), grid) for p in (north, south)]
    try:
        assert not readers[0].direct and not readers[1].direct
        a, b = (r.read(0, 0, 96, 100) for r in readers)
    finally:
        for r in readers:
            r.close()
    assert np.isfinite(a[:, 1:-1, 1:-1]).all()
    np.testing.assert_array_equal(a, b)


def test_a_20_m_first_date_does_not_set_a_20_m_output_grid(tmp_path, baseline):
    """New-user trial: the first S2 raster resampled to 20 m made the whole map 20 m (OA 84.6
    instead of 87.6). The output grid is the reference raster closest to the model's 10 m."""
    coarse = to_crs(S2[0], tmp_path / os.path.basename(S2[0]), "EPSG:32633", res=20.0)
    classes, transform, crs, report = run_map({"s2": [coarse] + S2[1:], "dem": [DEM]},
                                              tmp_path / "o.tif")
    assert transform == baseline[1] and classes.shape == baseline[0].shape
    assert any(m.startswith("output grid: S2_L1C_20150731.tif") for m in report.messages)
    assert equal_pct(classes, baseline[0]) >= 90.0   # one date of five at half the resolution


def test_a_dem_covering_half_the_area_is_reported(tmp_path):
    with rasterio.open(DEM) as src:
        prof, data = src.profile.copy(), src.read(window=((0, src.height), (0, 50)))
        prof.update(width=50)
    half = str(tmp_path / "dem_west.tif")
    with rasterio.open(half, "w", **prof) as out:
        out.write(data)
    classes, _, _, report = run_map({"s2": S2, "dem": [half]}, tmp_path / "o.tif")
    said = [m for m in report.messages if m.startswith("warning: dem covers about 50 %")]
    assert said and "nodata where a modality has no data" in said[0]
    assert (classes[:, 50:] == 255).all() and (classes[:, :48] != 255).all()
    _, _, _, full = run_map({"s2": S2, "dem": [DEM]}, tmp_path / "f.tif")
    assert not any("covers about" in m for m in full.messages)
