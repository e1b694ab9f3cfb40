"""Acquisition dates of input slices.

Order of precedence (docs/model-contract.md, "Dates in the engine"):
1. an explicit date given by the caller (handled in :mod:`engine.stack`);
2. GDAL metadata tags of the raster (:data:`DATE_TAGS`, default and ``IMAGERY`` domains);
3. a date in the file name, ``YYYYMMDD`` or ``YYYY-MM-DD``.
"""
from __future__ import annotations

import datetime as _dt
import os
import re

#: GDAL metadata items holding an acquisition date, in the order they are tried.
DATE_TAGS = ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME", "DATE_ACQUIRED", "ACQUISITION_DATE",
             "DATETIME")
#: Metadata domains searched for :data:`DATE_TAGS` (IMAGERY holds ACQUISITIONDATETIME in GDAL).
_DOMAINS = (None, "IMAGERY")
# A date not glued to other digits: 20200501 or 2020-05-01 (not 2020-0501).
_NAME_DATE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:(\d{2})(\d{2})|-(\d{2})-(\d{2}))(?!\d)")
# The leading date (and optional time) of a tag value: 2020-05-01T10:30:00Z, 2020:05:01 10:30:00,
# 2020/05/01, 20200501.
_TAG_DATE_RE = re.compile(
    r"^\s*(\d{4})[-:/]?(\d{2})[-:/]?(\d{2})(?:[T _]?(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?")


def parse_date_text(text: str) -> _dt.datetime | None:
    """Parse a metadata value or an ISO string into a datetime (hour kept, 0 when absent).

    Returns None when no valid date starts the text.
    """
    match = _TAG_DATE_RE.match(str(text))
    if not match:
        return None
    year, month, day, hour = (int(g) if g else 0 for g in match.groups()[:4])
    try:
        return _dt.datetime(year, month, day, hour if hour < 24 else 0)
    except ValueError:
        return None


def date_from_name(path: str) -> _dt.datetime | None:
    """The first valid ``YYYYMMDD`` / ``YYYY-MM-DD`` date in the file name (not the folders)."""
    for match in _NAME_DATE_RE.finditer(os.path.basename(path)):
        year = int(match.group(1))
        month, day = match.group(2) or match.group(4), match.group(3) or match.group(5)
        try:
            return _dt.datetime(year, int(month), int(day))
        except ValueError:
            continue
    return None


def date_from_tags(dataset) -> _dt.datetime | None:
    """The acquisition date in an open rasterio dataset's GDAL metadata, if any."""
    for tag in DATE_TAGS:
        for domain in _DOMAINS:
            try:
                tags = dataset.tags(ns=domain) if domain else dataset.tags()
            except Exception:  # a driver without that domain
                continue
            if tag in tags:
                found = parse_date_text(tags[tag])
                if found:
                    return found
    return None


def read_slice_datetime(path: str) -> tuple[_dt.datetime | None, str]:
    """(datetime, where it came from: 'tags' | 'file name' | '') for a raster file."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            found = date_from_tags(src)
    except Exception:  # unreadable files are reported by the reader with a clear error
        found = None
    if found:
        return found, "tags"
    found = date_from_name(path)
    return (found, "file name") if found else (None, "")


def read_slice_date(path: str) -> _dt.date | None:
    """The date the engine would use for ``path`` without an explicit value (tags, then file
    name); None when there is none."""
    found, _ = read_slice_datetime(path)
    return found.date() if found else None


def date_triplet(when: _dt.datetime | _dt.date) -> tuple[int, int, int]:
    """MAESTRO's date encoding input: (year, day_of_year 1..366, hour 0..23 UTC)."""
    hour = when.hour if isinstance(when, _dt.datetime) else 0
    return when.year, when.timetuple().tm_yday, hour
