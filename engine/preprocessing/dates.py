"""Acquisition dates of input slices: every way of reading them, the time-of-day rule, the date
triplet and the checks of a stack's dates. Shared by the engine and training's datasets.

Where a slice's date comes from, in this order (docs/model-contract.md, "Dates in the engine"):

1. a value given by the caller (:func:`as_datetime`);
2. a *sensor* tag of the raster's GDAL metadata (:data:`SENSOR_TAGS`, default and ``IMAGERY``
   domains): the acquisition as the data provider wrote it;
3. a date in the file name (:func:`date_from_name`): ``YYYYMMDD``, ``YYYY-MM-DD`` (or with
   ``_``/``.``), optionally followed by ``THH[MM[SS]]``, as in ``S2_20200501T10.tif``,
   ``..._2020-05-01.tif`` or Sentinel/Landsat product names (:data:`PRODUCT_NAMES`: their
   processing/stop dates are not read). A name holding two or more *different* dates (e.g.
   ``export_20240105_S2_20150711.tif``: an export day and an acquisition day) is ambiguous:
   :func:`find_slice_date` refuses it (:class:`AmbiguousNameDateError`) unless 1. or 2. gives
   the date.

``TIFFTAG_DATETIME`` is never an acquisition date: TIFF 6.0 defines the DateTime tag (306) as
the "date and time of image creation", i.e. when the file was written, which for an exported
or converted raster is the export day (Adobe, TIFF Revision 6.0, 1992, section 8, p. 31).
:func:`find_slice_date` still reports it (source :data:`SOURCE_TIFF`) when it is a slice's only
date, so that the caller can say so: :func:`check_stack_dates` refuses such a slice naming the
file and how to give its date; the one raster of a single-date modality (DEM, aerial) takes the
run's reference date instead (:func:`single_date_drops_tiff`), as an undated one does.

Time of day (:func:`date_triplet`): models of contract version 2 get hour 0 whatever the
source says, because most sources (file names, date-only tags, explicit dates, MAESTRO's own
datasets) carry no time of day; their graphs ignore the hour anyway. Version-1 models keep
getting the hour of a full timestamp (0 when unknown), as they always did.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..paths import same_file


class DateFormatError(InputError, ValueError):
    """A text or value given as a date is not one (an :class:`~engine.errors.InputError`; also
    a ValueError for callers that catch that)."""


class AmbiguousNameDateError(InputError):
    """A file name holds two or more different dates and nothing else (explicit value, sensor
    tag) says which one is the acquisition (an :class:`~engine.errors.InputError`)."""


#: GDAL metadata items holding the acquisition (sensor) date, in the order they are tried:
#: GDAL's IMAGERY domain item, Landsat MTL, generic names, Sentinel-2 tile/product metadata
#: (GDAL SENTINEL2 driver), Sentinel-1 (GDAL SAFE driver), EXIF capture time, a plain DATETIME.
SENSOR_TAGS = ("ACQUISITIONDATETIME", "DATE_ACQUIRED", "ACQUISITION_DATE", "SENSING_TIME",
               "SENSING_START", "PRODUCT_START_TIME", "DATATAKE_1_DATATAKE_SENSING_START",
               "ACQUISITION_START_TIME", "START_TIME", "EXIF_DATETIMEORIGINAL", "DATETIME")
#: The TIFF DateTime tag as GDAL names it: the file's write time, never an acquisition date
#: (reported by :func:`find_slice_date` so that :func:`check_stack_dates` can refuse it).
TIFF_DATETIME_TAG = "TIFFTAG_DATETIME"
#: Kept for callers that list every tag read.
DATE_TAGS = SENSOR_TAGS + (TIFF_DATETIME_TAG,)
#: Metadata domains searched (IMAGERY holds ACQUISITIONDATETIME in GDAL's convention).
DOMAINS = (None, "IMAGERY")

#: Where a date came from (``DateFound.source``); tags are ``"tag <NAME>"``.
SOURCE_GIVEN = "given"
SOURCE_NAME = "file name"
SOURCE_TIFF = "TIFFTAG_DATETIME (file write time)"

#: Dates more than this many days from every date of the rest of their stack are reported.
OUTLIER_GAP_DAYS = 2 * 365 + 1
#: The first day an Earth-observation satellite imaged the land (Landsat 1, launched
#: 1972-07-23; NASA Landsat Science, "Landsat 1"). An acquisition before it, or after today,
#: is a wrong date, not an unusual one.
FIRST_EO_DAY = _dt.date(1972, 7, 23)

# A date not glued to other digits: 20200501, 2020-05-01, 2020_05_01, 2020.05.01 (one separator
# used twice), optionally THH, THHMM, THHMMSS or THH:MM[:SS].
_NAME_DATE_RE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})(?:(\d{2})(\d{2})|([-_.])(\d{2})\4(\d{2}))"
    r"(?:[Tt](\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?(?!\d)")
# The leading date (and optional time) of a tag or given value: 2020-05-01T10:30:00Z,
# 2020:05:01 10:30:00 (TIFF), 2020/05/01, 20200501.
_TEXT_DATE_RE = re.compile(
    r"\s*(\d{4})([-:/]?)(\d{2})\2(\d{2})(?:[Tt _]?(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?")
# What may follow a given value's time: fractions of a second and a time zone.
_TEXT_TAIL_RE = re.compile(r"(?:[.,]\d+)?\s*(?:[Zz]|UTC|[+-]\d{2}(?::?\d{2})?)?\s*")

_DT = r"\d{8}T\d{6}"
#: Product names whose later dates are not acquisition dates, as (what, pattern): the
#: pattern's named groups ``skip*`` are the dates :func:`date_from_name` does not read.
#:
#: - Sentinel-2 (compact naming, products since 2016-12-06):
#:   ``MMM_MSIXXX_YYYYMMDDTHHMMSS_Nxxyy_ROOO_Txxxxx_<product discriminator>``: the first date is
#:   the datatake sensing start, the discriminator is the product's generation time (ESA,
#:   Sentinel-2 Products Specification Document S2-PDGS-TAS-DI-PSD, "naming convention";
#:   SentiWiki "Sentinel-2 Products Naming Convention");
#: - Sentinel-2 before 2016-12-06 (``S2A_OPER_...``): ``..._<creation>_R<orbit>_V<start>_<stop>``
#:   and datastrips ``..._<creation>_S<sensing start>_N..``: only a date after ``_V`` or ``_S``
#:   is the sensing time, the others are creation and stop times (same document, issue 13);
#: - Sentinel-1: ``MMM_BB_TTTR_LFPP_<start>_<stop>_OOOOOO_DDDDDD_CCCC``: the product start and
#:   stop times (ESA, Sentinel-1 Product Specification S1-RS-MDA-52-7441, "product naming");
#: - Landsat Collection 1/2: ``LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX``: acquisition date,
#:   then processing date (USGS, "Landsat Collections" product identifier FAQ).
PRODUCT_NAMES = (
    ("Sentinel-2", re.compile(rf"S2[A-D]_MSI\w{{3,4}}_{_DT}_N\d{{4}}_R\d{{3}}_T\w{{5}}_"
                              rf"(?P<skip>{_DT})", re.IGNORECASE)),
    ("Sentinel-2 (before 2016-12-06)", re.compile(
        rf"S2[A-D]_OPER_\w*?(?P<skip>{_DT})(?:\w*?_[VS]{_DT}(?:_(?P<skip2>{_DT}))?)?",
        re.IGNORECASE)),
    ("Sentinel-1", re.compile(rf"S1[A-D]_\w\w_\w{{4}}_\w{{4}}_{_DT}_(?P<skip>{_DT})_",
                              re.IGNORECASE)),
    ("Landsat", re.compile(r"L[COTEM]0\d_L\w{3}_\d{6}_\d{8}_(?P<skip>\d{8})_\d{2}_(?:T1|T2|RT)",
                           re.IGNORECASE)),
)


@dataclass(frozen=True)
class DateFound:
    """A slice's date and where it came from.

    Attributes:
        when: the datetime (hour, minute as found; 0 when the source has none).
        source: :data:`SOURCE_GIVEN`, ``"tag <NAME>"``, :data:`SOURCE_NAME` or
            :data:`SOURCE_TIFF`.
    """

    when: _dt.datetime
    source: str


def _build(year: int, month: int, day: int, hour=None, minute=None, second=None
           ) -> _dt.datetime | None:
    """A datetime, or None for an impossible date; an impossible time of day is dropped."""
    try:
        date = _dt.datetime(year, month, day)
    except (ValueError, OverflowError):
        return None
    try:
        return date.replace(hour=int(hour or 0), minute=int(minute or 0), second=int(second or 0))
    except ValueError:
        return date


def _parse_text(text: str) -> tuple[_dt.datetime, int] | None:
    match = _TEXT_DATE_RE.match(text)
    if not match:
        return None
    y, _, mo, d, h, mi, s = match.groups()
    found = _build(int(y), int(mo), int(d), h, mi, s)
    return (found, match.end()) if found else None


def parse_date_text(text) -> _dt.datetime | None:
    """The date (and time when present) that starts a metadata value, e.g.
    ``2020-05-01T10:30:00Z``, ``2020:05:01 10:30:00`` (TIFF), ``2020/05/01``, ``20200501``.

    Returns:
        the datetime (time of day as written, time zone ignored), or None when the text does
        not start with a valid date. Never raises.
    """
    try:
        found = _parse_text(str(text))
    except Exception:  # an object whose str() fails is not a date
        return None
    return found[0] if found else None


def name_dates(path) -> list[_dt.datetime]:
    """The acquisition dates a file name (not its folders) may hold, one per day, in the order
    they come: every valid ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY_MM_DD`` or ``YYYY.MM.DD`` not
    glued to other digits, with an optional time ``THH[MM[SS]]`` (the first one of a day kept),
    except the processing, generation and stop dates of the product names of
    :data:`PRODUCT_NAMES` (e.g. the second date of
    ``S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449``). Never raises.

    Returns:
        [] when the name holds no date; one datetime for an unambiguous name; several (distinct
        days) for an ambiguous one such as ``export_20240105_S2_20150711.tif``.
    """
    try:
        name = os.path.basename(os.fspath(path))
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        name = str(name)
    except Exception:
        return []
    skipped: set[int] = set()
    for _what, pattern in PRODUCT_NAMES:
        for product in pattern.finditer(name):
            skipped.update(product.start(g) for g, v in product.groupdict().items()
                           if g.startswith("skip") and v is not None)
    found: dict[_dt.date, _dt.datetime] = {}
    for match in _NAME_DATE_RE.finditer(name):
        if match.start() in skipped:
            continue
        y, mo1, d1, _, mo2, d2, h, mi, s = match.groups()
        when = _build(int(y), int(mo1 or mo2), int(d1 or d2), h, mi, s)
        if when is not None:
            found.setdefault(when.date(), when)
    return list(found.values())


def date_from_name(path) -> _dt.datetime | None:
    """The acquisition date of a file name (not the folders): its one date (:func:`name_dates`:
    ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY_MM_DD`` or ``YYYY.MM.DD`` not glued to other digits,
    with an optional time ``THH[MM[SS]]``), found once or repeated. In Sentinel-1/2 and Landsat
    product names (:data:`PRODUCT_NAMES`) the sensing date, e.g.
    ``S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449`` -> 2019-01-03 10:44:31.

    Returns:
        the datetime; None when the name holds no valid date, or two or more different ones
        (ambiguous: :func:`find_slice_date` says so). Never raises.
    """
    found = name_dates(path)
    return found[0] if len(found) == 1 else None


def product_date(product) -> _dt.date:
    """The sensing date of a Sentinel/Landsat product name (str or bytes), e.g.
    ``S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449`` -> 2019-01-03: the
    first date of the name (official TreeSatAI-TS code takes the 5th field from the end, the
    same date in these names: maestro/dataset/treesatai_ts.py products_datetimes).

    Raises:
        DateFormatError: no date in the name, or two different ones outside a known product
            naming (:func:`date_from_name`).
    """
    if isinstance(product, bytes):
        product = product.decode("utf-8", "replace")
    found = date_from_name(str(product))
    if found is None:
        raise DateFormatError(f"no date, or more than one, in the product name {product!r}")
    return found.date()


def parse_yyyymmdd(value) -> _dt.date:
    """A ``YYYYMMDD`` date given as int or str (dataset tables: FLAIR-HUB, PASTIS, TreeSatAI).
    A day ``00`` is read as ``01`` (official strs_datetimes does the same for month-only
    dates).

    Raises:
        DateFormatError: not eight digits forming a date.
    """
    text = str(value).strip()
    if len(text) != 8 or not text.isdigit() or not text.isascii():
        raise DateFormatError(f"expected a YYYYMMDD date, got {value!r}")
    found = _build(int(text[:4]), int(text[4:6]), int(text[6:]) or 1)
    if found is None:
        raise DateFormatError(f"{value!r} is not a valid YYYYMMDD date")
    return found.date()


def as_datetime(value, what: str = "date") -> _dt.datetime:
    """An explicit date given by a caller as a datetime, date, numpy datetime64 or text
    (``YYYY-MM-DD``, ``YYYYMMDD``, ISO 8601 with a time and time zone).

    Args:
        what: names the input in the error message (e.g. the file the date is for).

    Raises:
        DateFormatError: the value is not a date.
    """
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    if isinstance(value, np.datetime64):
        try:
            value = value.astype("datetime64[s]").item()
        except (ValueError, OverflowError):
            value = None
        if isinstance(value, _dt.datetime):
            return value
        raise DateFormatError(f"{what}: the numpy datetime is not a valid date")
    if isinstance(value, str):
        found = _parse_text(value)
        if found and _TEXT_TAIL_RE.fullmatch(value, found[1]):
            return found[0]
        raise DateFormatError(f"{what}: {value!r} is not a date (expected YYYY-MM-DD, YYYYMMDD "
                              "or an ISO 8601 date and time)")
    raise DateFormatError(f"{what}: {value!r} ({type(value).__name__}) is not a date")


# ---------------------------------------------------------------------------------- reading
def _tag_items(dataset) -> list[tuple[str, str]]:
    """(upper-case key, value) of the dataset's default and IMAGERY metadata."""
    items: list[tuple[str, str]] = []
    for domain in DOMAINS:
        try:
            tags = dataset.tags(ns=domain) if domain else dataset.tags()
        except Exception:  # a driver without that domain
            continue
        items.extend((str(k).upper(), v) for k, v in tags.items())
    return items


def date_from_tags(dataset, sensor_only: bool = True) -> DateFound | None:
    """The date in an open rasterio dataset's GDAL metadata: the first of :data:`SENSOR_TAGS`
    that parses, else (``sensor_only`` False) ``TIFFTAG_DATETIME``."""
    items = _tag_items(dataset)
    for tag in SENSOR_TAGS + (() if sensor_only else (TIFF_DATETIME_TAG,)):
        for key, value in items:
            if key == tag:
                found = parse_date_text(value)
                if found:
                    return DateFound(found, SOURCE_TIFF if tag == TIFF_DATETIME_TAG
                                     else f"tag {tag}")
    return None


def find_slice_date(path, given=None) -> DateFound | None:
    """Where the date of one raster comes from, by the order of precedence above.

    Args:
        path: a raster GDAL opens (an unreadable one just has no tags; the reader reports it).
        given: an explicit date or None.

    Returns:
        the date and its source; a ``TIFFTAG_DATETIME`` found when nothing else gives a date,
        with source :data:`SOURCE_TIFF` (the file's write time: :func:`check_stack_dates`
        refuses it); None when no source holds a date.

    Raises:
        DateFormatError: ``given`` is not a date.
        AmbiguousNameDateError: neither ``given`` nor a sensor tag gives the date and the file
            name holds two or more different dates (naming the file, the dates and how to give
            the date).
    """
    if given is not None:
        return DateFound(as_datetime(given, f"date given for '{path}'"), SOURCE_GIVEN)
    tiff = None
    try:
        from .reading import open_raster

        with open_raster(os.fspath(path)) as src:
            found = date_from_tags(src)
            if found is None:
                tiff = date_from_tags(src, sensor_only=False)
    except Exception:  # unreadable: the reader reports it with a clear error
        found = None
    if found:
        return found
    names = name_dates(path)
    if len(names) > 1:
        days = ", ".join(_day(w) for w in names)
        raise AmbiguousNameDateError(
            f"the name of '{path}' holds {len(names)} different dates ({days}): which one is the "
            "acquisition date cannot be told (the others may be export or processing days). "
            f"Give it explicitly: DATES={os.path.basename(os.fspath(path))}=YYYY-MM-DD in the "
            f"Processing algorithms, --date MODALITY={path}=YYYY-MM-DD on the command line "
            "(MODALITY as the model names it, e.g. s2), "
            "or an ACQUISITIONDATETIME tag (gdal_edit.py -mo ACQUISITIONDATETIME=YYYY-MM-DD "
            "FILE), or rename the file so that it holds only the acquisition date")
    if names:
        return DateFound(names[0], SOURCE_NAME)
    return tiff


def single_date_drops_tiff(founds: Sequence[DateFound | None], max_dates: int) -> bool:
    """The rule for a single-date modality (DEM, aerial: ``max_dates`` 1) given one raster
    dated only by TIFFTAG_DATETIME: that is the file's write time, so the raster takes the
    run's reference date instead (True: drop the date)."""
    return (max_dates == 1 and len(founds) == 1 and founds[0] is not None
            and founds[0].source == SOURCE_TIFF)


def read_slice_datetime(path) -> tuple[_dt.datetime | None, str]:
    """(datetime, source) the engine would use for a raster without an explicit date;
    (None, "") when it has none: no date, only ``TIFFTAG_DATETIME`` (the write time) or an
    ambiguous file name. Never raises for a date reason."""
    try:
        found = find_slice_date(path)
    except AmbiguousNameDateError:
        return None, ""
    if found is None or found.source == SOURCE_TIFF:
        return None, ""
    return found.when, found.source


def read_slice_date(path) -> _dt.date | None:
    """The date the engine would use for ``path`` without an explicit value; None if none
    (see :func:`read_slice_datetime`)."""
    when, _ = read_slice_datetime(path)
    return when.date() if when else None


# ---------------------------------------------------------------------------------- triplet
def date_triplet(when: _dt.datetime | _dt.date, keep_hour: bool = False) -> tuple[int, int, int]:
    """MAESTRO's date encoding input ``(year, day_of_year 1..366, hour)`` (official
    maestro/dataset/utils.py dates_numpy, where the hour is always 0).

    Args:
        keep_hour: True only for contract-version-1 models (the hour of a full timestamp,
            0 for a plain date); the rule for everything else is hour 0.
    """
    hour = when.hour if keep_hour and isinstance(when, _dt.datetime) else 0
    return when.year, when.timetuple().tm_yday, hour


def date_triplets(dates: Iterable[_dt.datetime | _dt.date], keep_hour: bool = False
                  ) -> np.ndarray:
    """int32 [T, 3] of :func:`date_triplet`."""
    rows = [date_triplet(d, keep_hour) for d in dates]
    return np.asarray(rows, dtype=np.int32).reshape(len(rows), 3)


# ---------------------------------------------------------------------------- stack checks
#: Side of each window hashed by :func:`content_fingerprint`, and the windows' centres as
#: fractions of the raster's height and width.
FINGERPRINT_PX = 32
FINGERPRINT_AT = ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75))


def content_fingerprint(path: str) -> str | None:
    """A hash of a raster's size, data types and five ``FINGERPRINT_PX`` windows of every
    band (centre and quarter points: a few blocks decoded, whatever the raster's size):
    equal for copies of one raster; :func:`same_content` confirms a match. None when it
    cannot be read (the reader reports that)."""
    try:
        from rasterio.windows import Window

        from .reading import open_raster

        with open_raster(path) as src:
            h = hashlib.sha256(repr((src.count, src.width, src.height, src.dtypes)).encode())
            side_r, side_c = min(FINGERPRINT_PX, src.height), min(FINGERPRINT_PX, src.width)
            for fr, fc in FINGERPRINT_AT:
                r = min(max(int(fr * src.height) - side_r // 2, 0), src.height - side_r)
                c = min(max(int(fc * src.width) - side_c // 2, 0), src.width - side_c)
                h.update(np.ascontiguousarray(src.read(window=Window(c, r, side_c, side_r)))
                         .tobytes())
    except Exception:
        return None
    return h.hexdigest()


def holds_no_data(path: str) -> bool:
    """True when a raster, read at up to 256 x 256 px, has no pixel that is both unmasked and
    non-zero (every pixel nodata, or 0, Sentinel-2's NO_DATA)."""
    from .reading import open_raster

    with open_raster(path) as src:
        shape = (src.count, min(src.height, 256), min(src.width, 256))
        data = src.read(out_shape=shape, masked=True)
    return not bool(np.any(data.filled(0)))


def same_content(a: str, b: str, rows: int = 256) -> bool:
    """True when two rasters hold the same pixels (full read, ``rows`` rows at a time)."""
    from rasterio.windows import Window

    from .reading import open_raster

    with open_raster(a) as sa, open_raster(b) as sb:
        if (sa.count, sa.width, sa.height, sa.dtypes) != (sb.count, sb.width, sb.height, sb.dtypes):
            return False
        for r in range(0, sa.height, rows):
            win = Window(0, r, sa.width, min(rows, sa.height - r))
            if not np.array_equal(sa.read(window=win), sb.read(window=win), equal_nan=True):
                return False
    return True


def _day(when: _dt.datetime) -> str:
    return when.date().isoformat()


def check_stack_dates(name: str, items: Sequence[tuple[str, _dt.datetime | None, str]],
                      log: Callable[[str], None] | None = None) -> None:
    """Check one modality's dated slices before they are used.

    Args:
        name: the modality (for messages).
        items: ``(path, when, source)`` per slice, ``source`` as in :class:`DateFound`
            (``when`` may be None for an undated slice: only the file checks apply).
        log: receives warning lines (two rasters of one day; dates far from the rest).

    Raises:
        InputError: a slice whose only date is ``TIFFTAG_DATETIME`` (source
            :data:`SOURCE_TIFF`: the file's write time, not an acquisition date), naming every
            such file, its write day and how to give the date; two items are the same file
            (same path, symbolic or hard link) or hold identical pixels (two copies), naming
            both; or a date lies before :data:`FIRST_EO_DAY` or after today (UTC), naming the
            file and where the date came from.

    Two different rasters of one day are reported (one log line): two scenes of one
    acquisition (adjacent tiles of one orbit) belong in one mosaic, one slice per date.

    A date is reported (one log line) when it is more than :data:`OUTLIER_GAP_DAYS` days
    (two years) from every date of the largest group of the stack's dates, groups being
    split wherever consecutive dates are more than that apart: a one-year series spans less,
    a multi-year series of regular acquisitions has no such gap, a mistyped year has.
    """
    log = log or (lambda _m: None)
    paths = [os.fspath(p) for p, _, _ in items]
    tiff = [(os.fspath(p), w) for p, w, s in items if s == SOURCE_TIFF and w is not None]
    if tiff:
        files = ", ".join(f"'{p}' ({_day(w)})" for p, w in tiff)
        one = os.path.basename(tiff[0][0])
        raise InputError(
            f"modality '{name}': no acquisition date for {files}: the only date found is "
            "TIFFTAG_DATETIME, which TIFF 6.0 defines as the time the file was written (an "
            "export or conversion day), not when the image was acquired. Give the date: "
            f"DATES={one}=YYYY-MM-DD in the Processing algorithms (one entry per file, "
            f"separated by ';'), --date {name}=PATH=YYYY-MM-DD on the command line, a "
            "YYYYMMDD in the file name (S2_20200501.tif), or an ACQUISITIONDATETIME or "
            "DATE_ACQUIRED tag (gdal_edit.py -mo ACQUISITIONDATETIME=YYYY-MM-DD FILE)")
    today = _dt.datetime.now(_dt.timezone.utc).date()
    for path, when, source in items:
        if when is not None and not FIRST_EO_DAY <= when.date() <= today:
            why = ("before the first Earth-observation satellite (Landsat 1, 1972-07-23)"
                   if when.date() < FIRST_EO_DAY else f"after today ({today.isoformat()})")
            raise InputError(f"modality '{name}': '{path}' is dated {_day(when)} (from "
                             f"{source or 'its date'}), {why}: that cannot be an acquisition "
                             "date; give the right date explicitly (DATES= in the plugin, --date "
                             f"{name}=PATH=YYYY-MM-DD on the command line)")
    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            if same_file(paths[i], paths[j]):
                raise InputError(f"modality '{name}': '{paths[i]}' and '{paths[j]}' are the same "
                                 "file given twice (as two dates): give each acquisition once")
    prints: dict[str, str] = {}
    for p in paths:
        fp = content_fingerprint(p)
        if fp is None:
            continue
        other = prints.get(fp)
        if other is not None and same_content(other, p):
            if holds_no_data(p):
                raise InputError(f"modality '{name}': '{other}' and '{p}' hold no valid pixel "
                                 "at all (every pixel nodata or 0): check these rasters (an "
                                 "export outside the data, a wrong band or window)")
            raise InputError(f"modality '{name}': '{other}' and '{p}' hold identical pixels "
                             "(the same acquisition given twice as two dates): give each "
                             "acquisition once")
        prints.setdefault(fp, p)
    by_day: dict[str, list[str]] = {}
    for path, when, _ in items:
        if when is not None:
            by_day.setdefault(_day(when), []).append(os.path.basename(path))
    for day, names in sorted(by_day.items()):
        if len(names) > 1:
            log(f"warning: {name}: {', '.join(names)} are all dated {day}: two scenes of one "
                "acquisition belong in one mosaic (gdalbuildvrt), one raster per date")
    for path, when in far_dates([(p, w) for p, w, _ in items if w is not None]):
        log(f"warning: {name}: {os.path.basename(path)} is dated {_day(when)}, more than two "
            "years from the rest of its stack: check that date")


def far_dates(items: Sequence[tuple[str, _dt.datetime]]) -> list[tuple[str, _dt.datetime]]:
    """The items outside the largest group of dates (groups split at gaps of more than
    :data:`OUTLIER_GAP_DAYS` days between consecutive dates); ties go to the later group."""
    if len(items) < 2:
        return []
    order = sorted(range(len(items)), key=lambda i: items[i][1])
    groups, current = [], [order[0]]
    for a, b in zip(order, order[1:]):
        if (items[b][1] - items[a][1]).days > OUTLIER_GAP_DAYS:
            groups.append(current)
            current = []
        current.append(b)
    groups.append(current)
    if len(groups) == 1:
        return []
    keep = max(range(len(groups)), key=lambda g: (len(groups[g]), g))
    return [items[i] for g, group in enumerate(groups) if g != keep for i in group]
