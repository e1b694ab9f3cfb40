"""What to read from a raster for a modality, and how to bring it to the model's units: the
one entry point the engine (engine.stack.open_slice) and training datasets share.

:func:`plan_read` = band identity (:mod:`.bands`) + refused data types, GDAL scale/offset and
unit conversion, value checks on a sample (:mod:`.radiometry`). Apply the plan to pixels read
with ``indexes=plan.indexes``, after masking nodata to NaN: ``plan.calibration.apply(data)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .bands import alpha_bands, match_bands, raster_band_names
from .radiometry import (Calibration, check_dtypes, check_values, declared_add_offsets,
                         implied_nodata, offset_warning, plan_calibration,
                         product_level_warning, sample_values)


@dataclass(frozen=True)
class ReadPlan:
    """How to read one raster for one modality.

    Attributes:
        indexes: 1-based raster bands in the model's band order (rasterio ``indexes=``).
        calibration: per model band ``value = raw * gain + bias``.
        notes: lines for the run log (band matching, scale/offset), without the file name.
    """

    indexes: tuple[int, ...]
    calibration: Calibration
    notes: tuple[str, ...] = ()


def gdal_read_errors() -> tuple[type[BaseException], ...]:
    """Exception types a GDAL read raises through rasterio (a truncated file, a VRT whose
    source is gone): ``RasterioIOError`` is an ``OSError``; GDAL's CPLE errors and the rest
    of rasterio's errors have their own bases."""
    import rasterio.errors

    types: list[type] = [rasterio.errors.RasterioError, OSError]
    try:
        from rasterio._err import CPLE_BaseError

        types.append(CPLE_BaseError)
    except ImportError:  # pragma: no cover - rasterio without the private module
        pass
    return tuple(types)


def plan_read(src, spec, path: str, check: bool = True, when=None) -> ReadPlan:
    """The read plan of an open rasterio dataset for a modality.

    Args:
        src: open rasterio dataset.
        spec: the modality (engine.contract.ModalitySpec, or any object with ``name``,
            ``bands``, ``scaling`` and ``radiometry``).
        path: the raster source, for messages.
        check: run the value checks on a sample (reads up to 64 small windows). The nodata
            rules the raster does not declare (:func:`.radiometry.implied_nodata`) are part of
            the plan either way; their log lines and the baseline-04.00 warning need the sample.
        when: acquisition date (or datetime), for the Sentinel-2 baseline-04.00 warning.

    Raises:
        InputError: bands missing or miscounted, a data type that cannot carry the data,
            values clearly not what the model was trained on, or a failed read of the
            sample; each names the file.
    """
    match = match_bands(raster_band_names(src), spec.bands, path=path, modality=spec.name,
                        alpha=alpha_bands(src))
    idx = list(match.indexes)
    check_dtypes([src.dtypes[i - 1] for i in idx], spec.bands, path=path, modality=spec.name)
    adds = declared_add_offsets(src.tags(), [src.tags(i) for i in idx], spec.bands)
    calibration = plan_calibration([src.scales[i - 1] for i in idx],
                                   [src.offsets[i - 1] for i in idx], spec, path=path,
                                   add_offsets=adds)
    notes = [n for n in (match.note, calibration.note, product_level_warning(spec, src.tags(), path))
             if n]
    declared = declares_nodata(src, idx)
    zero, valid, _ = implied_nodata(spec, [], declared=declared)
    if check:
        stats: dict = {}
        values = sample_values(src, idx, path=path, band_names=spec.bands,
                               errors=gdal_read_errors(), zero_nodata=zero, stats=stats)
        values = [v * g + b for v, g, b in zip(values, calibration.gain, calibration.bias)]
        try:
            check_values(values, spec, path=path)
        except InputError as exc:
            scaled = [(src.scales[i - 1], src.offsets[i - 1]) for i in idx
                      if src.scales[i - 1] != 1.0 or src.offsets[i - 1] != 0.0]
            if not scaled:
                raise
            g, b = scaled[0]
            raise InputError(
                f"{exc} Note: the raster declares a GDAL scale {g:g} and offset {b:g}, applied "
                "before this check: if its values are already in the model's units, the "
                "declared scale is wrong; remove it ('gdal_edit.py -scale 1 -offset 0 FILE') "
                "rather than converting the values.") from None
        _, _, implied = implied_nodata(spec, values, declared=declared,
                                       any_zero=stats["any_zero"], pixels=stats["pixels"])
        notes += implied
        if valid is not None:
            values = [v[(v >= valid[0]) & (v <= valid[1])] for v in values]
        warning = offset_warning(spec, values, calibration, when)
        if warning:
            notes.append(warning)
    return ReadPlan(tuple(idx), calibration.with_nodata(zero, valid), tuple(notes))


def declares_nodata(src, indexes) -> bool:
    """A nodata value, mask band or alpha band is declared for one of the bands read."""
    from rasterio.enums import MaskFlags

    return any(MaskFlags.all_valid not in src.mask_flag_enums[i - 1] for i in indexes)


def open_raster(path: str):
    """Open a raster source as QGIS layers give them: anything GDAL opens (file, /vsi path,
    ``NETCDF:"f.nc":var``, VRT XML), or a QGIS GDAL-provider URI ``source|option:KEY=VALUE``
    (open options after ``|``, QgsGdalProviderMetadata.encodeUri), tried only when the whole
    string does not open.

    Returns:
        an open rasterio dataset.

    Raises:
        the rasterio error of opening the whole string when neither form opens.
    """
    import rasterio

    try:
        return rasterio.open(path)
    except gdal_read_errors():
        if "|" not in path:
            raise
        base, *parts = path.split("|")
        options = dict(p[len("option:"):].split("=", 1) for p in parts
                       if p.startswith("option:") and "=" in p)
        try:
            return rasterio.open(base, **options)
        except gdal_read_errors():
            pass
        raise
