"""Moved to :mod:`engine.preprocessing.dates` (re-exported here for older imports)."""
from .preprocessing.dates import (DATE_TAGS, SENSOR_TAGS, TIFF_DATETIME_TAG,  # noqa: F401
                                  as_datetime, date_from_name, date_from_tags, date_triplet,
                                  find_slice_date, parse_date_text, read_slice_date,
                                  read_slice_datetime)
