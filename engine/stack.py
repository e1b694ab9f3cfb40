"""Per-modality stacks of slices: open and check each raster, find its date, sort by date,
subsample evenly to the model's ``max_dates``.

Rules (docs/model-contract.md, "Dates in the engine"; dates are read by
:mod:`engine.preprocessing.dates`):
- the same file (path, symbolic or hard link) or identical pixels given twice is refused; a
  slice dated only by TIFFTAG_DATETIME (the file write time) is refused;
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
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .contract import ModalitySpec, ModelMetadata
from .errors import InputError
from .types import SliceInput
from .preprocessing.dates import (DateFound, check_stack_dates, find_slice_date,
                                  single_date_drops_tiff)


@dataclass
class Slice:
    """One checked input raster.

    Attributes:
        path: the raster source string (a file, or anything GDAL opens: /vsi paths,
            ``NETCDF:"f.nc":var``, VRT XML).
        when: acquisition datetime (None until filled for an undated single-date slice).
        date_source: 'given', 'tag <NAME>', 'file name', 'TIFFTAG_DATETIME (file write
            time)' (engine.preprocessing.dates) or 'reference date'.
        crs, transform, width, height, bounds: the raster's grid (rasterio objects), always
            north-up: a south-up raster gets its flipped equivalent (``flipped``), a
            GCP-georeferenced one the grid GDAL's warper chooses for it (``gcps``); bounds are
            (xmin, ymin, xmax, ymax).
        count: number of bands of the raster.
        indexes: 1-based raster band per model band (engine.preprocessing.bands).
        calibration: gain/bias per model band (engine.preprocessing.radiometry).
        flipped: the stored rows run south to north.
        gcps: (gcps, crs) when the raster is georeferenced by ground control points only.
        notes: lines for the run log (band matching, radiometry), without the file name.
        band_names: the model's names of the bands read (for messages).
    """

    path: str
    when: _dt.datetime | None
    date_source: str
    crs: Any
    transform: Any
    width: int
    height: int
    bounds: tuple[float, float, float, float]
    count: int
    indexes: tuple[int, ...] | None = None
    calibration: Any = None
    flipped: bool = False
    gcps: tuple | None = None
    notes: tuple[str, ...] = ()
    band_names: tuple[str, ...] = ()

    @property
    def band_indexes(self) -> list[int]:
        """1-based raster bands to read, in model order."""
        return list(self.indexes) if self.indexes else list(range(1, self.count + 1))


def read_errors() -> tuple[type[BaseException], ...]:
    """Exception types a GDAL read raises (see engine.preprocessing.reading)."""
    from .preprocessing.reading import gdal_read_errors

    return gdal_read_errors()


def display_name(path: str) -> str:
    """A short name of a raster source for log lines: the file name, or ``VRT XML`` for an
    XML string, the part after the last '/' otherwise (``dem.nc":Band1``)."""
    stripped = path.strip()
    if stripped.startswith("<"):
        return "VRT XML (" + (re.findall(r"<SourceFilename[^>]*>([^<]*)<", stripped)
                              or ["no source"])[0].rsplit("/", 1)[-1] + ")"
    return os.path.basename(stripped) or stripped


def _looks_like_file(path: str) -> bool:
    """A plain local file path (not a GDAL connection string, /vsi path, URL or VRT XML)."""
    stripped = path.lstrip()
    driver_prefix = re.match(r"^[A-Za-z][A-Za-z0-9_]+:", path)  # NETCDF:"f.nc":var (not C:\\)
    return not (stripped.startswith("<") or stripped.startswith("/vsi") or "://" in path
                or driver_prefix)


def _grid(src, path: str, spec: ModalitySpec):
    """(crs, north-up transform, width, height, flipped, gcps) of an open dataset."""
    from .preprocessing.geometry import gcp_grid, north_up

    crs = src.crs
    if crs is not None:
        t = src.transform
        if t.is_identity or t.determinant == 0:
            raise InputError(f"input raster '{path}' ({spec.name}) has a CRS but no usable "
                             f"geotransform ({tuple(t)[:6]}): it cannot be placed on the ground "
                             "(set one with gdal_edit.py -a_ullr or -a_gt)")
        transform, flipped = north_up(t, src.height)
        return crs, transform, src.width, src.height, flipped, None
    gcps, gcp_crs = src.gcps
    if gcps and gcp_crs is not None:
        if len(gcps) < 3:
            raise InputError(f"input raster '{path}' ({spec.name}) has only {len(gcps)} ground "
                             "control point(s): at least 3 are needed to warp it")
        try:
            transform, width, height = gcp_grid(gcps, gcp_crs, src.width, src.height)
        except Exception as exc:
            raise InputError(
                f"input raster '{path}' ({spec.name}) is georeferenced by ground control points "
                f"that GDAL cannot fit ({exc}): warp it first, e.g. gdalwarp -order 1 "
                "-t_srs EPSG:xxxx IN OUT") from exc
        return gcp_crs, transform, width, height, False, (tuple(gcps), gcp_crs)
    if gcps:
        raise InputError(f"input raster '{path}' ({spec.name}) has ground control points but no "
                         "CRS for them: set it (gdal_translate -a_srs EPSG:xxxx keeps the GCPs), "
                         "or warp the raster with its GCPs (gdalwarp -t_srs EPSG:xxxx)")
    if getattr(src, "rpcs", None):
        raise InputError(f"input raster '{path}' ({spec.name}) is georeferenced by RPCs only: "
                         "orthorectify it first (gdalwarp -rpc -t_srs EPSG:xxxx, with a DEM "
                         "through -to RPC_DEM=dem.tif)")
    raise InputError(f"input raster '{path}' ({spec.name}) has no CRS: assign one "
                     "(e.g. gdal_edit.py -a_srs EPSG:xxxx) so it can be aligned")


def open_slice(path: str, spec: ModalitySpec, given_date=None) -> Slice:
    """Open ``path``, check it against the modality and find its date.

    Checks, in order: the raster opens (any GDAL source string); it is placed on the ground
    (CRS + geotransform, south-up flipped, or GCPs with their CRS); its bands are the model's
    (by name, else by count: engine.preprocessing.bands); their data type can carry the data;
    GDAL scale/offset and a sample of values against what the model was trained on
    (engine.preprocessing.radiometry).

    Raises:
        InputError: unreadable raster, no georeferencing, bands missing or miscounted, a data
            type or values the model cannot take; each names the file.
    """
    import rasterio

    from .preprocessing.reading import open_raster, plan_read

    path = os.fspath(path)
    try:
        src = open_raster(path)
    except read_errors() as exc:
        if _looks_like_file(path) and not os.path.exists(path):
            raise InputError(f"input raster for '{spec.name}' not found: '{path}'") from exc
        raise InputError(f"input raster for '{spec.name}' cannot be read: '{path}' "
                         f"({exc})") from exc
    with src:
        crs, transform, width, height, flipped, gcps = _grid(src, path, spec)
        bounds = rasterio.transform.array_bounds(height, width, transform)
        bounds = (bounds[0], bounds[1], bounds[2], bounds[3])
        count = src.count
        found = find_slice_date(path, given_date)
        plan = plan_read(src, spec, path, when=found.when if found else None)
    when, source = (found.when, found.source) if found else (None, "")
    return Slice(path, when, source, crs, transform, width, height, bounds, count,
                 indexes=plan.indexes, calibration=plan.calibration, flipped=flipped,
                 gcps=gcps, notes=plan.notes, band_names=tuple(spec.bands))


def collect_stack(spec: ModalitySpec, items: Sequence, log: Callable[[str], None]) -> list[Slice]:
    """Check, date, sort and subsample one modality's slices.

    Args:
        items: SliceInput or path strings.

    Raises:
        InputError: no slices, an undated slice of a time series, fewer than ``min_dates``,
            or a check of :func:`engine.preprocessing.dates.check_stack_dates` (same file or
            content twice, a date only from TIFFTAG_DATETIME), or an ambiguous file name
            (:class:`engine.preprocessing.dates.AmbiguousNameDateError`).
    """
    slices = []
    for item in items:
        item = SliceInput(os.fspath(item)) if isinstance(item, (str, os.PathLike)) else item
        slices.append(open_slice(os.fspath(item.path), spec, item.date))
        if item.date is not None:
            _check_given_date(spec.name, slices[-1], log)
    if not slices:
        raise InputError(f"modality '{spec.name}' has no input raster")
    if single_date_drops_tiff([DateFound(s.when, s.date_source) if s.when else None
                               for s in slices], spec.max_dates):
        first_when = slices[0].when
        assert first_when is not None                   # single_date_drops_tiff needs a date
        log(f"{spec.name}: {os.path.basename(slices[0].path)} has only TIFFTAG_DATETIME "
            f"({first_when.date().isoformat()}), the time the file was written: it takes "
            "the reference date instead")
        slices[0].when, slices[0].date_source = None, ""
    if spec.max_dates == 1 and len(slices) > 1:
        raise InputError(
            f"modality '{spec.name}' takes one raster (one date) but {len(slices)} were given "
            f"({', '.join(os.path.basename(s.path) for s in slices)}): tiles of one area go into "
            f"one mosaic first (e.g. gdalbuildvrt {spec.name}.vrt "
            f"{' '.join(os.path.basename(s.path) for s in slices[:3])}"
            f"{' ...' if len(slices) > 3 else ''}), then give the mosaic")
    undated = [s.path for s in slices if s.when is None]
    if undated and (spec.max_dates > 1 or len(slices) > 1):
        raise InputError(
            f"no acquisition date found for {', '.join(repr(p) for p in undated)} "
            f"(modality '{spec.name}' is a time stack): give it explicitly (DATES= in the "
            f"plugin, --date {spec.name}=PATH=YYYY-MM-DD on the command line), or set the "
            "ACQUISITIONDATETIME tag, or put YYYYMMDD / YYYY-MM-DD in the file name")
    check_stack_dates(spec.name, [(s.path, s.when, s.date_source) for s in slices], log)
    if len(slices) < spec.min_dates:
        raise InputError(f"modality '{spec.name}' has {len(slices)} date(s) but the model needs "
                         f"at least {spec.min_dates}")
    if len(slices) > 1:
        slices.sort(key=lambda s: (s.when, s.path))
    if len(slices) > spec.max_dates:
        keep = np.unique(np.round(np.linspace(0, len(slices) - 1, spec.max_dates)).astype(int))
        days = [_day_of(s) for s in slices]
        kept = set(keep.tolist())
        log(f"warning: {spec.name}: {len(slices)} dates given, the model takes at most "
            f"{spec.max_dates}: using {len(keep)} spread over the list in date order (first and "
            f"last kept: {', '.join(days[i] for i in keep)}), not "
            f"{', '.join(d for i, d in enumerate(days) if i not in kept)}; give the "
            f"{spec.max_dates} dates you want the model to see")
        slices = [slices[i] for i in keep]
    _log_notes(spec, slices, log)
    return slices


def _log_notes(spec: ModalitySpec, slices: list[Slice], log: Callable[[str], None]) -> None:
    """One log line per distinct band/radiometry note, naming the files it concerns."""
    by_note: dict[str, list[str]] = {}
    for s in slices:
        for note in s.notes:
            by_note.setdefault(note, []).append(display_name(s.path))
    for note, files in by_note.items():
        if note.startswith("warning: "):          # warnings stay recognisable as such
            log(f"warning: {spec.name}: {note[len('warning: '):]} ({', '.join(files)})")
        else:
            log(f"{spec.name}: {note} ({', '.join(files)})")


def _check_given_date(name: str, sl: Slice, log: Callable[[str], None]) -> None:
    """Warn when a date given for a raster differs from the acquisition date its own tags
    state (the given date is used: it may correct a wrong tag, or be a typing slip)."""
    from .preprocessing.dates import SOURCE_TIFF, find_slice_date

    try:
        own = find_slice_date(sl.path)
    except InputError:                          # e.g. a name with two dates: nothing to compare
        return
    if own is None or sl.when is None or not own.source.startswith("tag "):
        return
    if own.source == SOURCE_TIFF or own.when.date() == sl.when.date():
        return
    log(f"warning: {name}: the date given for {display_name(sl.path)} "
        f"({sl.when.date().isoformat()}) differs from its {own.source} "
        f"({own.when.date().isoformat()}): the given date is used")


def _day_of(sl: Slice) -> str:
    return sl.when.date().isoformat() if sl.when is not None else "undated"


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
                         f"({', '.join(files)}): give at least one date explicitly (DATES= in "
                         "the plugin, --date MODALITY=PATH=YYYY-MM-DD on the command line)")
    ref_date = min(ref)
    for stack in stacks.values():
        for s in stack:
            if s.when is None:
                s.when, s.date_source = ref_date, "reference date"
    return ref_date
