"""Per-modality stacks of slices: open and check each raster, find its date, sort by date,
subsample evenly to the model's ``max_dates``.

Rules (docs/model-contract.md, "Dates in the engine"; dates are read by
:mod:`engine.preprocessing.dates`):
- the same file (path, symbolic or hard link) or identical pixels given twice is refused; a
  stack whose slices all got one date from TIFFTAG_DATETIME (the file write time) is refused;
  a date more than two years from the rest of its stack is reported in the log;
- a time-series modality (``max_dates > 1``) needs a date for every slice (explicit, tags,
  file name) or raises InputError naming the file;
- a single-date modality without a date takes the run's reference date;
- ``ref_date`` is the earliest date of the reference modality (or, when the reference is a
  single undated raster, the earliest date of any modality).
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .contract import ModalitySpec, ModelMetadata
from .errors import InputError
from .preprocessing.dates import check_stack_dates, find_slice_date


@dataclass
class Slice:
    """One checked input raster.

    Attributes:
        path: the file.
        when: acquisition datetime (None until filled for an undated single-date slice).
        date_source: 'given', 'tag <NAME>', 'file name', 'TIFFTAG_DATETIME (file write
            time)' (engine.preprocessing.dates) or 'reference date'.
        crs, transform, width, height, bounds: the raster's grid (rasterio objects).
        count: number of bands.
    """

    path: str
    when: _dt.datetime | None
    date_source: str
    crs: object
    transform: object
    width: int
    height: int
    bounds: tuple[float, float, float, float]
    count: int


def open_slice(path: str, spec: ModalitySpec, given_date=None) -> Slice:
    """Open ``path``, check it against the modality and find its date.

    Raises:
        InputError: unreadable raster, no CRS, or band count differing from the model.
    """
    import rasterio

    if not os.path.exists(path) and "://" not in path and not path.startswith("/vsi"):
        raise InputError(f"input raster for '{spec.name}' not found: '{path}'")
    try:
        with rasterio.open(path) as src:
            crs, transform = src.crs, src.transform
            width, height, count, bounds = src.width, src.height, src.count, tuple(src.bounds)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"input raster for '{spec.name}' cannot be read: '{path}' ({exc})") from exc
    if crs is None:
        raise InputError(f"input raster '{path}' ({spec.name}) has no CRS: assign one "
                         "(e.g. gdal_edit.py -a_srs EPSG:xxxx) so it can be aligned")
    if count != len(spec.bands):
        raise InputError(f"input raster '{path}' has {count} bands but the model's modality "
                         f"'{spec.name}' expects {len(spec.bands)} ({', '.join(spec.bands)})")
    found = find_slice_date(path, given_date)
    when, source = (found.when, found.source) if found else (None, "")
    return Slice(path, when, source, crs, transform, width, height, bounds, count)


def collect_stack(spec: ModalitySpec, items: Sequence, log: Callable[[str], None]) -> list[Slice]:
    """Check, date, sort and subsample one modality's slices.

    Args:
        items: SliceInput or path strings.

    Raises:
        InputError: no slices, an undated slice of a time series, fewer than ``min_dates``,
            or a check of :func:`engine.preprocessing.dates.check_stack_dates` (same file or
            content twice, every date from TIFFTAG_DATETIME).
    """
    from .api import SliceInput

    slices = []
    for item in items:
        item = SliceInput(item) if isinstance(item, (str, os.PathLike)) else item
        slices.append(open_slice(os.fspath(item.path), spec, item.date))
    if not slices:
        raise InputError(f"modality '{spec.name}' has no input raster")
    undated = [s.path for s in slices if s.when is None]
    if undated and (spec.max_dates > 1 or len(slices) > 1):
        raise InputError(
            f"no acquisition date found for {', '.join(repr(p) for p in undated)} "
            f"(modality '{spec.name}' is a time stack): give it explicitly, or set the "
            "ACQUISITIONDATETIME tag, or put YYYYMMDD / YYYY-MM-DD in the file name")
    check_stack_dates(spec.name, [(s.path, s.when, s.date_source) for s in slices], log)
    if len(slices) < spec.min_dates:
        raise InputError(f"modality '{spec.name}' has {len(slices)} date(s) but the model needs "
                         f"at least {spec.min_dates}")
    if len(slices) > 1:
        slices.sort(key=lambda s: (s.when, s.path))
    if len(slices) > spec.max_dates:
        keep = np.unique(np.round(np.linspace(0, len(slices) - 1, spec.max_dates)).astype(int))
        log(f"{spec.name}: {len(slices)} dates given, the model takes at most {spec.max_dates}: "
            f"using {len(keep)} evenly spaced dates "
            f"({', '.join(slices[i].when.date().isoformat() for i in keep)})")
        slices = [slices[i] for i in keep]
    return slices


def reference_date(meta: ModelMetadata, stacks: dict[str, list[Slice]]) -> _dt.datetime:
    """Earliest date of the reference modality (fallback: of any modality); fills undated
    single-date slices with it.

    Raises:
        InputError: no date anywhere.
    """
    ref = [s.when for s in stacks[meta.reference_modality] if s.when is not None]
    if not ref:
        ref = [s.when for st in stacks.values() for s in st if s.when is not None]
    if not ref:
        files = [s.path for st in stacks.values() for s in st]
        raise InputError("no acquisition date found for any input "
                         f"({', '.join(files)}): give at least one date explicitly")
    ref_date = min(ref)
    for stack in stacks.values():
        for s in stack:
            if s.when is None:
                s.when, s.date_source = ref_date, "reference date"
    return ref_date
