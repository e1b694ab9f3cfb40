"""Sentinel-2 as delivered -> one VRT per date with a model's bands (``maestro:build_stack``).

Inputs, as users download them:

- **Products** (Level-1C or Level-2A, PSD 14 "SAFE" naming, 2016 onwards): a ``.SAFE`` folder,
  its ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``, or the ``.zip`` as downloaded (read through
  GDAL's ``/vsizip/``). The product is opened with GDAL's SENTINEL2 driver
  (https://gdal.org/drivers/raster/sentinel2.html), whose ``xml:SENTINEL2`` metadata domain
  holds the product metadata file; when the driver refuses it (a GDAL built without it) the
  same file is read directly. From it: the acquisition time (``PRODUCT_START_TIME``), the band
  files (``IMAGE_FILE``; for L2A the finest resolution of each band), the quantification value
  and the radiometric offsets (L1C ``RADIO_ADD_OFFSET``, L2A ``BOA_ADD_OFFSET``, per
  ``band_id`` 0..12 = B01..B12 with B8A at 8; absent before processing baseline 04.00, i.e.
  products before 2022-01-25, where the offset is 0). Reflectance = (DN + offset) /
  QUANTIFICATION_VALUE (ESA, Sentinel-2 Products Specification Document, PSD 14.9, and the
  processing baseline 04.00 notice, https://sentiwiki.copernicus.eu/web/s2-processing).
- **Per-band files of one date** (or a folder of them; ``*_B02.jp2``, ``T32TQM_20230101T101421_B8A_20m.jp2``,
  ``B04.tif``...): the band is the file-name token ``B1``..``B12`` / ``B01``..``B12`` / ``B8A``;
  the date comes from a ``YYYYMMDD`` in the file name, or is given. A file named ``SCL`` among
  them is used as an L2A scene classification.

Output, per date: ``<prefix>_<YYYYMMDD>.vrt`` with the model's bands in its order, on a grid of
the model's pixel size (the intersection of the bands' extents, optionally cropped to
``bounds``, snapped inwards to whole pixels), band descriptions and ``BANDNAME`` = the model's
band names, GDAL band offset = the product's additive offset and scale 1 (so values read through
GDAL's scale/offset are reflectance x QUANTIFICATION_VALUE whatever the baseline; the
QUANTIFICATION_VALUE itself is recorded, not applied), nodata 0 (the products' NODATA value),
``ACQUISITIONDATETIME`` (also in the IMAGERY domain, as GDAL writes it), and with ``mask`` a
per-dataset mask band (``<name>_mask.tif``, 0 = masked) from the product's classification:
L2A SCL classes (default :data:`DEFAULT_SCL_MASKED`), L1C ``MSK_CLASSI_B00.jp2`` (opaque
clouds, cirrus; baseline >= 04.00) or ``MSK_CLOUDS_B00.gml`` polygons (older), plus the pixels
whose first band is 0 (no data), because a mask band replaces the nodata value for readers.

Uses GDAL (osgeo.gdal/ogr/osr) only; no qgis, torch or onnxruntime.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from .preprocessing.bands import band_of_name, canonical_band
from .errors import InputError, OutputError

#: Sentinel-2 MSI bands in product ``band_id`` order (0..12).
BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
            "B12")
#: L2A scene classification (SCL) classes (ESA, Level-2A Algorithm Theoretical Basis Document).
SCL_CLASSES = {0: "no data", 1: "saturated or defective", 2: "dark area / cast shadows",
               3: "cloud shadows", 4: "vegetation", 5: "not vegetated", 6: "water",
               7: "unclassified", 8: "cloud, medium probability", 9: "cloud, high probability",
               10: "thin cirrus", 11: "snow or ice"}
#: SCL classes masked by default: no data, saturated/defective, cloud shadows, clouds, cirrus.
DEFAULT_SCL_MASKED = (0, 1, 3, 8, 9, 10)
RESAMPLINGS = ("bilinear", "nearest", "cubic", "average")
#: Band files taken from a folder given as input.
RASTER_EXTENSIONS = (".jp2", ".tif", ".tiff", ".vrt")

_PRODUCT_XML = re.compile(r"^MTD_MSIL(1C|2A)\.xml$", re.IGNORECASE)

LogFn = Callable[[str], None]


@dataclass
class S2Scene:
    """One date of Sentinel-2 as found on disk.

    Attributes:
        source: what was given (product path, or the first band file).
        level: ``L1C`` | ``L2A`` | ``""`` (per-band files of unknown level).
        when: acquisition time (UTC, naive) or None when unknown.
        band_files: band (``B02``..) -> GDAL path of its raster (``/vsizip/`` inside zips).
        offsets: band -> additive radiometric offset in DN (0 when the product has none).
        quantification: QUANTIFICATION_VALUE (reflectance = (DN + offset) / value), or None.
        mask_file, mask_kind: the classification raster / vector and its kind (``SCL``,
            ``MSK_CLASSI``, ``MSK_CLOUDS``), or None.
        metadata: product items copied to the VRT (PRODUCT_TYPE, PROCESSING_BASELINE, ...).
        opened_with: ``SENTINEL2`` (GDAL driver), ``XML`` (metadata file read directly) or
            ``files``.
    """

    source: str
    level: str = ""
    when: _dt.datetime | None = None
    band_files: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, float] = field(default_factory=dict)
    quantification: float | None = None
    mask_file: str | None = None
    mask_kind: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    opened_with: str = "files"

    @property
    def acquired(self) -> _dt.datetime:
        """``when``, for code that runs after :func:`find_scenes` dated every scene.

        Raises:
            InputError: the scene has no acquisition time (not dated yet).
        """
        if self.when is None:
            raise InputError(f"'{self.source}' has no acquisition time: give the date "
                             "(DATE=YYYY-MM-DD)")
        return self.when


# ---------------------------------------------------------------------- names
# ---------------------------------------------------------------------- finding scenes
def product_xml(path: str) -> str | None:
    """The GDAL path of a product's ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` for a ``.SAFE``
    folder, that file itself, or a ``.zip``; None when ``path`` is not a product."""
    from osgeo import gdal

    base = os.path.basename(path.rstrip("/\\"))
    if _PRODUCT_XML.match(base):
        return path
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if _PRODUCT_XML.match(name):
                return os.path.join(path, name)
        return None
    if base.lower().endswith(".zip"):
        root = "/vsizip/" + os.path.abspath(path)
        entries = gdal.ReadDirRecursive(root) or []
        hits = sorted((e.count("/"), e) for e in entries
                      if _PRODUCT_XML.match(os.path.basename(e.rstrip("/"))))
        if not hits:
            raise InputError(f"'{path}' is a zip without MTD_MSIL1C.xml / MTD_MSIL2A.xml: not a "
                             "Sentinel-2 L1C/L2A product as downloaded")
        return f"{root}/{hits[0][1]}"
    return None


def _read_text(gdal_path: str) -> str:
    from osgeo import gdal

    fh = gdal.VSIFOpenL(gdal_path, "rb")
    if fh is None:
        raise InputError(f"cannot read '{gdal_path}'")
    try:
        gdal.VSIFSeekL(fh, 0, 2)
        size = gdal.VSIFTellL(fh)
        gdal.VSIFSeekL(fh, 0, 0)
        return gdal.VSIFReadL(1, size, fh).decode("utf-8")
    finally:
        gdal.VSIFCloseL(fh)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _first_text(root: ET.Element, *names: str) -> str | None:
    for name in names:
        for e in _all(root, name):
            if e.text and e.text.strip():
                return e.text.strip()
    return None


def _exists(gdal_path: str) -> bool:
    from osgeo import gdal

    return gdal.VSIStatL(gdal_path) is not None


def _parse_time(text: str) -> _dt.datetime | None:
    """``2023-08-23T09:55:59.024Z`` -> datetime(2023, 8, 23, 9, 55, 59) (UTC, naive)."""
    try:
        return _dt.datetime.fromisoformat(text.strip()[:19])
    except ValueError:
        from .dates import parse_date_text

        return parse_date_text(text)


def open_product(path: str, log: LogFn | None = None) -> S2Scene:
    """Read a Sentinel-2 L1C/L2A product (SAFE folder, its MTD file, or zip).

    Raises:
        InputError: not a product, unreadable metadata, no band file listed, a band file
            missing.
    """
    from osgeo import gdal

    log = log or (lambda message: None)
    xml_path = product_xml(path)
    if xml_path is None:
        raise InputError(f"'{path}' is not a Sentinel-2 product (no MTD_MSIL1C.xml / "
                         "MTD_MSIL2A.xml)")
    opened_with = "XML"
    text = None
    items: dict[str, str] = {}
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        try:
            ds = gdal.OpenEx(xml_path, gdal.OF_RASTER, allowed_drivers=["SENTINEL2"])
        except RuntimeError:  # gdal.UseExceptions() in this process
            ds = None
        if ds is not None:
            domain = ds.GetMetadata("xml:SENTINEL2") or []
            text = domain[0] if domain else None
            items = ds.GetMetadata() or {}
            opened_with = "SENTINEL2" if text else "XML"
            ds = None
    finally:
        gdal.PopErrorHandler()
    if text is None:
        log(f"{path}: GDAL's SENTINEL2 driver did not open {os.path.basename(xml_path)}; "
            "reading the metadata file directly")
        text = _read_text(xml_path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"'{xml_path}': unreadable product metadata ({exc})") from exc
    top = _local(root.tag)
    level = "L2A" if "2A" in top else "L1C" if "1C" in top else ""
    if not level:
        raise InputError(f"'{xml_path}' is a '{top}' document, not a Level-1C/2A user product")
    base = xml_path.rsplit("/", 1)[0] if "/" in xml_path else os.path.dirname(xml_path)
    scene = S2Scene(source=path, level=level, opened_with=opened_with)
    when_text = (_first_text(root, "PRODUCT_START_TIME", "DATATAKE_SENSING_START")
                 or items.get("PRODUCT_START_TIME") or items.get("DATATAKE_1_DATATAKE_SENSING_START"))
    if when_text:
        scene.when = _parse_time(when_text)
    for key in ("PRODUCT_TYPE", "PROCESSING_BASELINE", "SPACECRAFT_NAME", "PRODUCT_URI",
                "CLOUD_COVERAGE_ASSESSMENT"):
        value = _first_text(root, key) or items.get(key)
        if value:
            scene.metadata[key] = value
    # band files: the finest resolution of each band (L2A lists R10m, R20m, R60m)
    best: dict[str, tuple[int, str]] = {}
    granule = None
    for e in _all(root, "IMAGE_FILE") + _all(root, "IMAGE_FILE_2A"):
        rel = (e.text or "").strip()
        if not rel:
            continue
        granule = granule or "/".join(rel.split("/")[:2])
        name = rel.rsplit("/", 1)[-1]
        band = band_of_name(name)
        if band is None:
            continue
        res = re.search(r"_(\d+)m$", name)
        gsd = int(res.group(1)) if res else 0
        if band not in best or gsd < best[band][0]:
            best[band] = (gsd, f"{base}/{rel}.jp2")
    if not best:
        raise InputError(f"'{xml_path}' lists no band file (IMAGE_FILE)")
    for band, (_, file) in best.items():
        if band == "SCL":
            scene.mask_file, scene.mask_kind = file, "SCL"
        else:
            scene.band_files[band] = file
    # quantification and offsets
    quant = _first_text(root, "BOA_QUANTIFICATION_VALUE" if level == "L2A" else
                        "QUANTIFICATION_VALUE")
    scene.quantification = float(quant) if quant else None
    offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    for e in _all(root, offset_tag):
        try:
            band_id, value = e.get("band_id"), e.text
            if band_id is None or value is None:
                raise ValueError("band_id or value missing")
            scene.offsets[BAND_IDS[int(band_id)]] = float(value)
        except (TypeError, ValueError, IndexError) as exc:
            raise InputError(f"'{xml_path}': unreadable {offset_tag} {e.attrib} ({exc})") from exc
    # L1C cloud masks in the granule's QI_DATA
    if level == "L1C" and granule:
        for name, kind in (("MSK_CLASSI_B00.jp2", "MSK_CLASSI"), ("MSK_CLOUDS_B00.gml",
                                                                   "MSK_CLOUDS")):
            candidate = f"{base}/{granule}/QI_DATA/{name}"
            if _exists(candidate):
                scene.mask_file, scene.mask_kind = candidate, kind
                break
    return scene


#: Tokens of the files of a Sentinel-2 product that are not spectral bands (ESA product
#: format: true-colour image, aerosol optical thickness, water vapour, preview, cloud and snow
#: probabilities): skipped when a folder or a glob of a product's files is given.
_NOT_BAND_TOKENS = {"TCI", "AOT", "WVP", "PVI", "CLDPRB", "SNWPRB", "CLD", "SNW"}
_RESOLUTION = re.compile(r"(?:^|[^0-9A-Za-z])(\d{2})m(?:$|[^0-9A-Za-z])")


def _resolution_m(path: str) -> int | None:
    """The resolution a Level-2A file name states (``..._B02_10m.jp2`` -> 10), or None."""
    m = _RESOLUTION.search(os.path.basename(path).split(".")[0])
    return int(m.group(1)) if m else None


def scenes_from_band_files(files: Sequence[str], date: _dt.date | None = None,
                           log: LogFn | None = None) -> list[S2Scene]:
    """Group per-band files by the date in their names (files without one take ``date``).

    Files that are a product's other layers (TCI, AOT, WVP...) are skipped with a log line;
    a band given at several resolutions (a Level-2A product's R10m/R20m/R60m folders) keeps
    its finest file, as the name's ``_10m``/``_20m``/``_60m`` says.

    Raises:
        InputError: a file whose band cannot be told from its name, a band given twice for one
            date at one resolution, an undated file without ``date``.
    """
    from .dates import date_from_name

    log = log or (lambda message: None)
    groups: dict[_dt.date, S2Scene] = {}
    skipped: list[str] = []
    for path in files:
        band = band_of_name(path)
        if band is None:
            tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+",
                                                   os.path.basename(path).split(".")[0])}
            if tokens & _NOT_BAND_TOKENS:
                skipped.append(os.path.basename(path))
                continue
            raise InputError(f"cannot tell the Sentinel-2 band of '{path}' from its name (expected "
                             "one token B01..B12 or B8A, e.g. T32TQM_20230101T101421_B04.jp2)")
        when = date_from_name(path)
        if when is not None:
            day = when.date()
        elif date is not None:
            day = date
        else:
            raise InputError(f"no acquisition date in the name of '{path}': give the date "
                             "(DATE=YYYY-MM-DD) or use file names with YYYYMMDD")
        scene = groups.setdefault(day, S2Scene(
            source=os.path.dirname(os.path.abspath(path)), when=_dt.datetime.combine(
                day, _dt.time())))
        target = "mask_file" if band == "SCL" else None
        if target:
            scene.mask_file, scene.mask_kind = path, "SCL"
            continue
        if band in scene.band_files:
            kept, res_kept, res_new = scene.band_files[band], None, _resolution_m(path)
            res_kept = _resolution_m(kept)
            if res_kept is None or res_new is None or res_kept == res_new:
                raise InputError(f"band {band} of {day.isoformat()} is given twice: "
                                 f"'{kept}' and '{path}'")
            if res_new < res_kept:
                scene.band_files[band] = path
            continue
        scene.band_files[band] = path
    if skipped:
        log(f"skipped {len(skipped)} file(s) that are not spectral bands: "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    return list(groups.values())


def find_scenes(paths: Sequence[str], date: _dt.date | None = None,
                log: LogFn | None = None) -> list[S2Scene]:
    """Products and per-band files -> one :class:`S2Scene` per date, sorted by date.

    Raises:
        InputError: nothing given, unreadable inputs, two scenes of one date.
    """
    if not paths:
        raise InputError("no Sentinel-2 product or band file given")
    scenes, band_files = [], []
    for path in paths:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise InputError(f"'{path}' does not exist")
        if product_xml(path) is not None:
            scenes.append(open_product(path, log))
        elif os.path.isdir(path):  # a folder of band files: those whose names carry a band
            found = [os.path.join(path, n) for n in sorted(os.listdir(path))
                     if n.lower().endswith(RASTER_EXTENSIONS) and band_of_name(n)]
            if not found:
                raise InputError(f"folder '{path}' holds neither a Sentinel-2 product nor band "
                                 "files named with their band (B02, B8A, ...)")
            band_files += found
        else:
            band_files.append(path)
    scenes += scenes_from_band_files(band_files, date, log) if band_files else []
    days: dict[_dt.date, S2Scene] = {}
    for scene in scenes:
        if scene.when is None:
            if date is None:
                raise InputError(f"'{scene.source}' has no acquisition time: give the date "
                                 "(DATE=YYYY-MM-DD)")
            scene.when = _dt.datetime.combine(date, _dt.time())
        day = scene.acquired.date()
        if day in days:
            raise InputError(f"two scenes of {day.isoformat()}: '{days[day].source}' and "
                             f"'{scene.source}' (mosaic tiles of one date first)")
        days[day] = scene
    return sorted(scenes, key=lambda s: s.acquired)


# ---------------------------------------------------------------------- writing
@dataclass(frozen=True)
class _Grid:
    wkt: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    res: float

    @property
    def size(self) -> tuple[int, int]:
        return (int(round((self.xmax - self.xmin) / self.res)),
                int(round((self.ymax - self.ymin) / self.res)))


def _grid(files: Sequence[str], res: float, bounds, bounds_crs) -> _Grid:
    """The output grid: the intersection of the files' extents (and bounds), in their CRS,
    snapped inwards to multiples of ``res``."""
    from osgeo import gdal, osr

    srs0, wkt0, box = None, None, None
    for path in files:
        try:
            ds = gdal.Open(path)
        except RuntimeError as exc:  # gdal.UseExceptions() in this process
            raise InputError(f"cannot open '{path}' with GDAL: {exc}") from exc
        if ds is None:
            raise InputError(f"cannot open '{path}' with GDAL: {gdal.GetLastErrorMsg()}")
        srs = osr.SpatialReference(wkt=ds.GetProjection() or "")
        if not ds.GetProjection():
            raise InputError(f"'{path}' has no CRS")
        if srs0 is None:
            srs0, wkt0 = srs, ds.GetProjection()
        elif not srs0.IsSame(srs):
            raise InputError(f"'{path}' is on another CRS than '{files[0]}': bands of one "
                             "date must share the product's UTM zone")
        gt = ds.GetGeoTransform()
        if gt[2] or gt[4] or gt[5] >= 0:
            raise InputError(f"'{path}' is rotated or south-up; Sentinel-2 band files are not")
        x0, y1 = gt[0], gt[3]
        x1, y0 = x0 + gt[1] * ds.RasterXSize, y1 + gt[5] * ds.RasterYSize
        box = (x0, y0, x1, y1) if box is None else (max(box[0], x0), max(box[1], y0),
                                                    min(box[2], x1), min(box[3], y1))
        ds = None
    if box is None or wkt0 is None:
        raise InputError("no Sentinel-2 band file given")
    if bounds is not None:
        b = tuple(bounds)
        if bounds_crs:
            from rasterio.warp import transform_bounds

            b = transform_bounds(bounds_crs, wkt0, *b, densify_pts=21)
        box = (max(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), min(box[3], b[3]))
    xmin, ymin = math.ceil(box[0] / res - 1e-9) * res, math.ceil(box[1] / res - 1e-9) * res
    xmax, ymax = math.floor(box[2] / res + 1e-9) * res, math.floor(box[3] / res + 1e-9) * res
    if xmax <= xmin or ymax <= ymin:
        what = "the area" if bounds is not None else "the band files"
        raise InputError(f"{what} and the Sentinel-2 bands {list(files)[:1]}... do not overlap "
                         "(no common pixel)")
    return _Grid(wkt0, xmin, ymin, xmax, ymax, res)


def _warp_to_grid(path: str, grid: _Grid, band_list=None):
    """numpy array [bands, rows, cols] of a raster resampled (nearest) onto the grid."""
    from osgeo import gdal

    width, height = grid.size
    ds = gdal.Warp("", path, format="MEM", dstSRS=grid.wkt, width=width, height=height,
                   outputBounds=(grid.xmin, grid.ymin, grid.xmax, grid.ymax),
                   resampleAlg="near")
    if ds is None:
        raise InputError(f"cannot read '{path}' onto the output grid")
    arr = ds.ReadAsArray()
    ds = None
    return arr.reshape((-1,) + arr.shape[-2:])


def _mask_array(scene: S2Scene, grid: _Grid, masked_classes: Iterable[int], first_band: str):
    """uint8 [rows, cols]: 255 valid, 0 masked (classification and no-data pixels)."""
    import numpy as np

    valid = _warp_to_grid(first_band, grid)[0] != 0
    mask_file = scene.mask_file
    if mask_file is None:
        pass
    elif scene.mask_kind == "SCL":
        scl = _warp_to_grid(mask_file, grid)[0]
        valid &= ~np.isin(scl, list(masked_classes))
    elif scene.mask_kind == "MSK_CLASSI":
        classi = _warp_to_grid(mask_file, grid)
        valid &= ~(classi[:2] != 0).any(axis=0)  # bands 1, 2: opaque clouds, cirrus
    elif scene.mask_kind == "MSK_CLOUDS":
        valid &= _rasterize_gml(mask_file, grid) == 0
    return np.where(valid, 255, 0).astype("uint8")


def _rasterize_gml(path: str, grid: _Grid):
    """1 where a cloud polygon of an L1C MSK_CLOUDS_B00.gml covers the pixel, else 0."""
    from osgeo import gdal

    width, height = grid.size
    mem = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    mem.SetProjection(grid.wkt)
    mem.SetGeoTransform((grid.xmin, grid.res, 0, grid.ymax, 0, -grid.res))
    src = gdal.OpenEx(path, gdal.OF_VECTOR)
    if src is not None and src.GetLayerCount():
        gdal.Rasterize(mem, src, burnValues=[1])
    arr = mem.ReadAsArray()
    mem = src = None
    return arr


def _write_mask_tif(path: str, array, grid: _Grid) -> None:
    from osgeo import gdal

    width, height = grid.size
    ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Byte,
                                              options=["COMPRESS=DEFLATE", "TILED=YES"])
    if ds is None:
        raise OutputError(f"cannot write '{path}'")
    ds.SetProjection(grid.wkt)
    ds.SetGeoTransform((grid.xmin, grid.res, 0, grid.ymax, 0, -grid.res))
    ds.GetRasterBand(1).WriteArray(array)
    ds.GetRasterBand(1).SetDescription("valid (255) / masked (0)")
    ds = None


def _add_mask_band(vrt_path: str, mask_name: str) -> None:
    """Add a per-dataset ``<MaskBand>`` reading ``mask_name`` (beside the VRT) to a VRT."""
    tree = ET.parse(vrt_path)
    root = tree.getroot()
    mask = ET.SubElement(root, "MaskBand")
    band = ET.SubElement(mask, "VRTRasterBand", dataType="Byte")
    src = ET.SubElement(band, "SimpleSource")
    ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = mask_name
    ET.SubElement(src, "SourceBand").text = "1"
    tree.write(vrt_path, encoding="utf-8")


def write_date_vrt(scene: S2Scene, bands: Sequence[str], gsd_m: float, vrt_path: str, *,
                   mask: bool = False, masked_classes: Iterable[int] = DEFAULT_SCL_MASKED,
                   bounds: Sequence[float] | None = None, bounds_crs: str | None = None,
                   resampling: str = "bilinear", log: LogFn | None = None) -> str:
    """Write one date's VRT (see the module docstring); returns ``vrt_path``.

    Args:
        bands: the model's band names in its order (``B02``.. or ``B2``..).
        gsd_m: output pixel size, metres (the model's).
        mask: add the product's cloud / scene classification as a mask band.
        masked_classes: SCL classes masked (L2A).
        bounds: optional ``(xmin, ymin, xmax, ymax)`` crop, in ``bounds_crs`` (default: the
            product's CRS).
        resampling: GDAL resampling of bands whose pixel size differs from ``gsd_m``.

    Raises:
        InputError: a model band missing from the scene, bands on different CRSs, no overlap.
        OutputError: the VRT or its mask cannot be written (nothing is left half-written).
    """
    from osgeo import gdal

    log = log or (lambda message: None)
    if resampling not in RESAMPLINGS:
        raise InputError(f"resampling '{resampling}' is not one of {RESAMPLINGS}")
    wanted = [canonical_band(b) for b in bands]
    missing = [b for b in wanted if b not in scene.band_files]
    if missing:
        raise InputError(f"{scene.source}: bands {missing} are missing (found "
                         f"{sorted(scene.band_files)}); the model needs {wanted}")
    files = [scene.band_files[b] for b in wanted]
    grid = _grid(files, float(gsd_m), bounds, bounds_crs)
    folder = os.path.dirname(os.path.abspath(vrt_path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder '{folder}': {exc}") from exc
    stem = os.path.splitext(os.path.basename(vrt_path))[0]
    tmp_vrt = os.path.join(folder, f".{stem}.vrt.part")
    mask_name = f"{stem}_mask.tif"
    tmp_mask = os.path.join(folder, f".{mask_name}.part")
    try:
        options = gdal.BuildVRTOptions(
            separate=True, resolution="user", xRes=grid.res, yRes=grid.res,
            outputBounds=(grid.xmin, grid.ymin, grid.xmax, grid.ymax), resampleAlg=resampling,
            srcNodata=0, VRTNodata=0)
        ds = gdal.BuildVRT(tmp_vrt, files, options=options)
        if ds is None:
            raise OutputError(f"GDAL could not build '{vrt_path}': {gdal.GetLastErrorMsg()}")
        for i, band_name in enumerate(wanted, start=1):
            band = ds.GetRasterBand(i)
            band.SetDescription(band_name)
            band.SetMetadataItem("BANDNAME", band_name)
            offset = scene.offsets.get(band_name, 0.0)
            band.SetOffset(offset)
            band.SetScale(1.0)
            if scene.level:
                key = "BOA_ADD_OFFSET" if scene.level == "L2A" else "RADIO_ADD_OFFSET"
                band.SetMetadataItem(key, repr(offset))
        meta = dict(scene.metadata)
        when = scene.acquired.strftime("%Y-%m-%dT%H:%M:%S")
        meta.update({"ACQUISITIONDATETIME": when, "BANDS": ",".join(wanted),
                     "SENTINEL2_SOURCE": scene.source, "SENTINEL2_LEVEL": scene.level or "unknown",
                     "SENTINEL2_OPENED_WITH": scene.opened_with})
        if scene.quantification is not None:
            meta["QUANTIFICATION_VALUE"] = repr(scene.quantification)
            meta["RADIOMETRY"] = (f"reflectance = (DN + band offset) / {scene.quantification:g};"
                                  " GDAL offset applied, QUANTIFICATION_VALUE not applied")
        for key, value in meta.items():
            ds.SetMetadataItem(key, str(value))
        ds.SetMetadataItem("ACQUISITIONDATETIME", when, "IMAGERY")
        wrote_mask = False
        if mask:
            if scene.mask_file is None:
                log(f"{scene.source}: no cloud / scene classification mask in this input; "
                    "none applied")
                ds.SetMetadataItem("CLOUD_MASK", "none available")
            else:
                classes = sorted(set(int(c) for c in masked_classes))
                what = (f"SCL classes {classes}" if scene.mask_kind == "SCL" else
                        f"{scene.mask_kind} opaque clouds and cirrus")
                ds.SetMetadataItem("CLOUD_MASK", f"{what} + band value 0 ({mask_name})")
                _write_mask_tif(tmp_mask, _mask_array(scene, grid, classes, files[0]), grid)
                wrote_mask = True
        ds.FlushCache()
        ds = None
        if wrote_mask:
            os.replace(tmp_mask, os.path.join(folder, mask_name))
            _add_mask_band(tmp_vrt, mask_name)
        os.replace(tmp_vrt, vrt_path)
    except OSError as exc:
        raise OutputError(f"cannot write '{vrt_path}': {exc}") from exc
    except RuntimeError as exc:  # a GDAL error under gdal.UseExceptions()
        raise InputError(f"{scene.source}: GDAL failed building '{vrt_path}': {exc}") from exc
    finally:
        for leftover in (tmp_vrt, tmp_mask):
            if os.path.exists(leftover):
                os.remove(leftover)
    log(f"{os.path.basename(vrt_path)}: {scene.acquired.date().isoformat()}, {len(wanted)} bands at "
        f"{grid.res:g} m, {grid.size[0]} x {grid.size[1]} px"
        + (", offsets " + ", ".join(f"{b} {scene.offsets[b]:g}" for b in wanted
                                    if scene.offsets.get(b)) if any(
            scene.offsets.get(b) for b in wanted) else ""))
    return vrt_path


def build_stack(paths: Sequence[str], bands: Sequence[str], gsd_m: float, output_dir: str, *,
                date: _dt.date | None = None, prefix: str = "S2", mask: bool = False,
                masked_classes: Iterable[int] = DEFAULT_SCL_MASKED,
                bounds: Sequence[float] | None = None, bounds_crs: str | None = None,
                resampling: str = "bilinear", log: LogFn | None = None) -> list[str]:
    """Sentinel-2 products / band files -> one VRT per date in ``output_dir``
    (``<prefix>_<YYYYMMDD>.vrt``), sorted by date.

    Raises:
        InputError, OutputError: see :func:`find_scenes` and :func:`write_date_vrt`.
    """
    from .preprocessing.radiometry import PB04_DATE

    log = log or (lambda message: None)
    scenes = find_scenes(paths, date, log)
    out = []
    for scene in scenes:
        name = f"{prefix}_{scene.acquired.strftime('%Y%m%d')}.vrt"
        if (scene.opened_with == "files" and scene.acquired.date() >= PB04_DATE
                and not any(scene.offsets.values())):
            log(f"warning: {name}: band files of {scene.acquired.date().isoformat()} (on or after "
                f"{PB04_DATE.isoformat()}: Sentinel-2 processing baseline 04.00 or later, DN + "
                "1000) given without their product metadata, so no offset is declared and the "
                "values are read as they are. If the product's BOA_ADD_OFFSET / RADIO_ADD_OFFSET "
                f"is -1000, declare it: 'gdal_edit.py -offset -1000 {name}' (every band), or give "
                "the product itself (SAFE folder, MTD_MSIL*.xml or zip)")
        out.append(write_date_vrt(scene, bands, gsd_m, os.path.join(output_dir, name),
                                  mask=mask, masked_classes=masked_classes, bounds=bounds,
                                  bounds_crs=bounds_crs, resampling=resampling, log=log))
    return out
