"""Acquisition dates as MAESTRO's int triplets ``(year, day_of_year, hour)``.

day_of_year is ``tm_yday`` (1..366); the hour is kept when known (0 otherwise), as in
official: maestro/dataset/utils.py::dates_numpy (there the hour is always 0 because dates
come from YYYYMMDD strings).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

import numpy as np

_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:[T_ ]?(\d{2}))?")


def triplet(date: dt.date | dt.datetime) -> tuple[int, int, int]:
    """``(year, day_of_year, hour)`` of a date or datetime."""
    hour = date.hour if isinstance(date, dt.datetime) else 0
    return date.year, date.timetuple().tm_yday, hour


def triplets(dates: Iterable[dt.date | dt.datetime]) -> np.ndarray:
    """int32 [T, 3] array of :func:`triplet`."""
    rows = [triplet(d) for d in dates]
    return np.asarray(rows, dtype=np.int32).reshape(len(rows), 3)


def parse_yyyymmdd(value: str | int) -> dt.date:
    """Parse ``YYYYMMDD`` (int or str). A day ``00`` is read as ``01`` (the official
    strs_datetimes does the same for month-only dates)."""
    text = str(value).strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"expected a YYYYMMDD date, got {value!r}")
    day = int(text[6:]) or 1
    return dt.date(int(text[:4]), int(text[4:6]), day)


def product_date(product: str | bytes) -> dt.date:
    """Date of a Sentinel product name such as
    ``S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449``: the 5th field from the
    end, first 8 characters (official: maestro/dataset/treesatai_ts.py, products_datetimes
    with idx=5)."""
    if isinstance(product, bytes):
        product = product.decode()
    fields = product.split("_")
    if len(fields) < 5:
        raise ValueError(f"not a Sentinel product name: {product!r}")
    return parse_yyyymmdd(fields[-5][:8])


def date_in_text(text: str) -> dt.datetime | None:
    """First ``YYYYMMDD``, ``YYYY-MM-DD`` (optionally with ``THH``) found in ``text``, or None."""
    for m in _DATE_RE.finditer(text):
        try:
            return dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)),
                               int(m.group(4) or 0))
        except ValueError:
            continue
    return None


#: GDAL metadata items holding an acquisition date, in the order they are tried (the engine
#: reads the same ones, docs/model-contract.md "Dates in the engine").
DATE_TAGS = ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME", "DATE_ACQUIRED", "ACQUISITION_DATE",
             "DATETIME")


def raster_date(path: str) -> dt.datetime | None:
    """Acquisition date of a raster: GDAL metadata tags first, then the file name."""
    import os

    import rasterio

    with rasterio.open(path) as src:
        tags = {k.upper(): v for k, v in src.tags().items()}
    for key in DATE_TAGS:
        if key in tags and (found := date_in_text(tags[key])):
            return found
    return date_in_text(os.path.basename(path))
