"""Radiometry: the values a raster holds, brought to the units the model was trained on.

Order of operations on every read (direct and warped, engine.align):
``value = raw * gain + bias`` per band, with ``gain = scale * k`` and ``bias = offset * k``,
where ``scale``/``offset`` are the GDAL band scale and offset (``GetScale``/``GetOffset``,
rasterio ``scales``/``offsets``: "units value = (raw pixel value * scale) + offset", GDAL
raster data model) and ``k`` a unit conversion decided here when the convention is certain.
The model's own scaling (contract ``scaling``) comes after.

Conventions handled:
- Sentinel-2 L1C/L2A from processing baseline 04.00 on store ``DN = reflectance x 10000 -
  offset`` with ``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET = -1000`` (ESA, "Sentinel-2 products
  specification document", PB 04.00 notes); a GDAL band offset of -1000 declares it and is
  applied like any offset.
  A band with no GDAL scale/offset declared but a metadata item ``BOA_ADD_OFFSET`` (L2A) or
  ``RADIO_ADD_OFFSET`` (L1C) gets that offset (:func:`declared_add_offsets`: band items, as the
  ESA metadata names them and engine.sentinel2 writes them, or dataset items, one value for
  every band or ``<ITEM>_<band>`` per band): a certain convention, logged.
  Without any declaration, a Sentinel-2 raster acquired on or after :data:`PB04_DATE` whose
  sampled values are at least 1000 in every band (no dark pixel at all: water, shadow and dark
  vegetation are below 1000 in reflectance x 10000) gets a warning in the run log saying how
  to declare the offset (:func:`offset_warning`); nothing is changed.
- A declared scale of 1e-4 turns Sentinel-2 DN into reflectance 0-1; a model trained on
  reflectance x 10000 gets those values multiplied back (``k = 10000``, logged).

Nodata that the raster does not declare (:func:`implied_nodata`), applied by
:meth:`Calibration.apply` (engine and training alike):

- Sentinel-2 reflectance (``radiometry`` product Sentinel-2 and quantity reflectance, or, without
  ``radiometry``, a modality whose bands are mostly Sentinel-2 band names) in a raster that
  declares no nodata value or mask of its own: a pixel whose stored value is 0 in any band is
  nodata (that band has no data there, and a pixel is valid only when every band has data:
  mosaics of bands of different extents, e.g. a VRT of the 10 m and 20 m band files, leave
  such pixels at their edges). 0 is the NO_DATA value of Sentinel-2 L1C/L2A products (ESA,
  Sentinel-2 Products Specification Document S2-PDGS-TAS-DI-PSD, ``Special_Values``:
  ``NODATA`` = 0, ``SATURATED`` = 65535; also with the offset of baseline 04.00: "DN = 0
  remains the NO_DATA value", sentiwiki.copernicus.eu/web/s2-products). The run log says so
  once per raster when the raster declares no nodata and the sample holds such pixels.
- Elevation in metres (``radiometry`` quantity elevation in m, or, without it, a modality or
  band named dem/elevation/height/altitude/dtm/dsm): values below -1000 m or above 9000 m
  (:data:`ELEVATION_M_RANGE`; the lowest land, the Dead Sea shore, is about -430 m, and the
  highest, Everest, 8848.86 m: Nepal-China survey, 2020) are nodata: the void values of DEMs
  (-32768, -9999, 32767...) when no nodata value is declared. Logged once per raster when the
  sample holds such values.

Value checks at open time, on a cheap sample (:func:`sample_values`, at most 64 windows of
32 x 32 px spread over the raster), after gain/bias, per band (:func:`check_values`):

- **with** ``radiometry`` (contract version 2), by quantity. The training range comes from
  the training area only (a summer scene, one region's heights), so values beyond it are not
  an error in themselves; only a change of units is refused:

  - reflectance / backscatter / other: a band is *off by range* when fewer than half its
    sampled valid values are at least ``lo - 2w`` (``w = hi - lo``; for ``other`` also at most
    ``hi + 2w``): dB backscatter (negative) into a linear-power model; *off by scale* (reflectance
    and other only) when its 99.5th percentile of ``|x|`` is below 1/100 or above 100 times
    ``max(|lo|, |hi|)``: reflectance 0-1 into a model of reflectance x 10000, or the reverse.
    Refused when at least half the bands are off by range or every band is off by scale.
  - elevation in metres: refused when more than half the values of every band lie outside
    :data:`ELEVATION_M_RANGE` (values no land has in metres).
- **without** it (version 1 models), from the scaling ``z = (f(x) - mean) / std``: refused when
  the median ``|z|`` of every band is above 1e3 (values a thousand times larger than the
  model's scale); for Sentinel-2 reflectance models (:func:`model_reflectance_factor` known)
  also when the 99.5th percentile of ``|z|`` is below 1e-3 in every band (a thousand times
  smaller: reflectance 0-1 fed to a model dividing DN by 5000; not applied to other
  modalities, where small values can be real, e.g. a DEM of a coast at 0-1 m); for ``log``
  scaling (linear backscatter) refused when most values of every band are negative (dB).

Checks need at least :data:`MIN_VALUES` valid sampled values per band; fewer skips them.
Data types that cannot carry the data are refused (:func:`check_dtypes`): signed 8-bit
(GDAL ``Int8``, or ``Byte`` with ``PIXELTYPE=SIGNEDBYTE``) and complex types.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError

#: Fewer valid sampled values than this in a band skip the value checks.
MIN_VALUES = 64
#: Sample windows: up to SAMPLE_GRID x SAMPLE_GRID windows of SAMPLE_PX x SAMPLE_PX pixels.
SAMPLE_GRID = 8
SAMPLE_PX = 32
_REFUSED_DTYPES = {"int8": "signed 8-bit integers (-128..127)",
                   "complex_int16": "complex numbers", "complex64": "complex numbers",
                   "complex128": "complex numbers", "complex": "complex numbers"}
_S2_NAME = re.compile(r"^B(0?[1-9]|1[0-2]|8A)$", re.IGNORECASE)
#: Sentinel-2 processing baseline 04.00 (DN + 1000, ``*_ADD_OFFSET = -1000``) was deployed on
#: 2022-01-25 (ESA, "Copernicus Sentinel-2: major products upgrade", processing baseline 04.00).
PB04_DATE = _dt.date(2022, 1, 25)
#: Metadata items of the additive offset: L2A, L1C (ESA product metadata names).
ADD_OFFSET_ITEMS = ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")
#: Words naming an elevation modality or band (models without ``radiometry``).
_ELEVATION_WORDS = {"DEM", "ELEVATION", "HEIGHT", "ALTITUDE", "DTM", "DSM"}


@dataclass(frozen=True)
class Calibration:
    """Per-band linear map from stored values to the model's units, in model band order.

    Attributes:
        gain, bias: ``value = raw * gain + bias`` (float64 tuples, one per model band).
        note: a line for the run log when something other than the identity is applied.
        zero_nodata: a pixel whose stored value is 0 in any band is nodata (Sentinel-2
            NO_DATA, module docstring).
        valid_range: (lo, hi) in model units; values outside are nodata (DEM voids), or None.
    """

    gain: tuple[float, ...]
    bias: tuple[float, ...]
    note: str | None = None
    zero_nodata: bool = False
    valid_range: tuple[float, float] | None = None

    @property
    def identity(self) -> bool:
        return all(g == 1.0 for g in self.gain) and all(b == 0.0 for b in self.bias)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """In place on float32 [bands, ...] of stored values (NaN = nodata): pixels 0 in any
        band to NaN (``zero_nodata``), then ``data * gain + bias`` (NaN stays NaN), then values
        outside ``valid_range`` to NaN."""
        if self.zero_nodata and data.shape[0]:
            data[:, np.any(data == 0, axis=0)] = np.nan
        if not self.identity:
            shape = (-1,) + (1,) * (data.ndim - 1)
            data *= np.asarray(self.gain, np.float32).reshape(shape)
            data += np.asarray(self.bias, np.float32).reshape(shape)
        if self.valid_range is not None:
            lo, hi = self.valid_range
            with np.errstate(invalid="ignore"):
                data[(data < lo) | (data > hi)] = np.nan
        return data

    def with_nodata(self, zero_nodata: bool, valid_range) -> Calibration:
        """The same calibration with the implied-nodata rules set."""
        return Calibration(self.gain, self.bias, self.note, zero_nodata, valid_range)


def check_dtypes(dtypes: Sequence[str], band_names: Sequence[str], *, path: str,
                 modality: str) -> None:
    """Refuse bands stored in a type that cannot carry the data.

    Args:
        dtypes: rasterio dtype name per band read (rasterio reports GDAL ``Byte`` with
            ``PIXELTYPE=SIGNEDBYTE`` as ``int8``).

    Raises:
        InputError: naming the file, the band and the type.
    """
    for dtype, band in zip(dtypes, band_names):
        what = _REFUSED_DTYPES.get(str(dtype))
        if what:
            raise InputError(
                f"input raster '{path}' ({modality}) stores band {band} as {dtype} ({what}), "
                "which cannot hold the values the model takes: write it as the original "
                "unsigned or float type" + (" (real amplitude or intensity, not complex)"
                                            if "complex" in what else ""))


def model_reflectance_factor(spec) -> float | None:
    """What 1.0 of reflectance is in the model's input units: 10000 (DN, reflectance x 10000),
    1 (reflectance 0-1), or None (not reflectance, or not known).

    From ``radiometry`` when recorded (``quantity == "reflectance"``: ``units`` mentioning
    10000 -> 10000, otherwise 1). For version-1 models, only for Sentinel-2 band names with
    identity scaling: ``std >= 1000`` -> 10000 (MAESTRO divides S2 DN by 5000), ``std <= 10``
    -> 1.
    """
    rad = getattr(spec, "radiometry", None)
    if rad is not None:
        if rad.quantity != "reflectance":
            return None
        return 10000.0 if "10000" in rad.units.replace(" ", "").replace(",", "") else 1.0
    if not _s2_bands(spec.bands) or spec.scaling.transform != "none" or any(abs(m) > 0 for m in spec.scaling.mean):
        return None
    std = min(spec.scaling.std)
    if std >= 1000:
        return 10000.0
    if max(spec.scaling.std) <= 10:
        return 1.0
    return None


def _s2_bands(bands) -> bool:
    return sum(1 for b in bands if _S2_NAME.match(str(b).strip())) >= max(1, len(bands) // 2)


def is_s2_reflectance(spec) -> bool:
    """Sentinel-2 reflectance: from ``radiometry`` (product naming Sentinel-2, quantity
    reflectance), or, without it, a modality whose bands are mostly Sentinel-2 band names."""
    rad = getattr(spec, "radiometry", None)
    if rad is not None:
        product = rad.product.lower().replace(" ", "").replace("-", "").replace("_", "")
        return rad.quantity == "reflectance" and ("sentinel2" in product or "s2" in product)
    return _s2_bands(spec.bands)


def is_elevation_m(spec) -> bool:
    """Elevation in metres: ``radiometry`` quantity elevation in m, or, without it, a modality
    or band named as one (dem, elevation, height, altitude, dtm, dsm)."""
    rad = getattr(spec, "radiometry", None)
    if rad is not None:
        return rad.quantity == "elevation" and rad.units.strip().lower() in (
            "m", "metre", "metres", "meter", "meters")
    words = set(re.split(r"[^A-Z0-9]+", str(spec.name).upper()))
    for b in spec.bands:
        words |= set(re.split(r"[^A-Z0-9]+", str(b).upper()))
    return bool(words & _ELEVATION_WORDS)


def declared_add_offsets(dataset_tags: dict, band_tags: Sequence[dict],
                         band_names: Sequence[str]) -> list[float | None]:
    """The Sentinel-2 additive offset each band's metadata declares (``BOA_ADD_OFFSET`` /
    ``RADIO_ADD_OFFSET``), or None per band.

    Looked up, first found wins: the band's own item; a dataset item ``<ITEM>_<band>``
    (``BOA_ADD_OFFSET_B04``, band spelt as the model names it or unpadded, ``B4``); a dataset
    item ``<ITEM>`` (one value for every band).

    Args:
        dataset_tags: dataset metadata (rasterio ``tags()``).
        band_tags: per band read, its metadata (``tags(i)``), in model band order.
        band_names: the model's band names, same order.
    """
    def number(text):
        try:
            return float(str(text).strip())
        except (TypeError, ValueError):
            return None

    upper = {str(k).upper(): v for k, v in (dataset_tags or {}).items()}
    out: list[float | None] = []
    for tags, band in zip(band_tags, band_names):
        tags = {str(k).upper(): v for k, v in (tags or {}).items()}
        found = None
        for item in ADD_OFFSET_ITEMS:
            b = str(band).upper()
            unpadded = re.sub(r"^B0(\d)", r"B\1", b)
            for value in (tags.get(item), upper.get(f"{item}_{b}"), upper.get(f"{item}_{unpadded}"),
                          upper.get(item)):
                if value is not None and number(value) is not None:
                    found = number(value)
                    break
            if found is not None:
                break
        out.append(found)
    return out


def plan_calibration(scales: Sequence[float | None], offsets: Sequence[float | None], spec, *,
                     path: str, add_offsets: Sequence[float | None] = ()) -> Calibration:
    """Gain and bias per model band from the declared GDAL scale/offset of the bands read.

    Args:
        add_offsets: per band, the additive offset its metadata declares
            (:func:`declared_add_offsets`), used where no GDAL scale/offset is declared.

    A declared scale of 1e-4 on every band (reflectance 0-1 from DN) into a model whose
    reflectance factor is 10000 is multiplied back (see the module docstring).
    """
    gains = [1.0 if s is None else float(s) for s in scales]
    biases = [0.0 if o is None else float(o) for o in offsets]
    k, note = 1.0, None
    declared = [f"{b} x{s:g}{o:+g}" for b, s, o in zip(spec.bands, gains, biases)
                if s != 1.0 or o != 0.0]
    if declared:
        note = "GDAL band scale/offset applied (" + ", ".join(declared) + ")"
    from_items = []
    for i, add in enumerate(list(add_offsets)[:len(biases)]):
        if add and gains[i] == 1.0 and biases[i] == 0.0:
            biases[i] = float(add)
            from_items.append(f"{spec.bands[i]} {add:+g}")
    if from_items:
        note = ((note + "; " if note else "") + "Sentinel-2 additive offset from the metadata "
                "(BOA_ADD_OFFSET / RADIO_ADD_OFFSET, no GDAL band offset declared) applied: "
                + ", ".join(from_items))
    factor = model_reflectance_factor(spec)
    if factor == 10000.0 and all(abs(s * 1e4 - 1.0) < 1e-6 for s in gains):
        k = 1e4
        note = ("GDAL band scale 0.0001 makes the values reflectance 0-1; the model takes "
                "reflectance x 10000: scale/offset applied, then x 10000")
    return Calibration(tuple(s * k for s in gains), tuple(o * k for o in biases), note)


def sample_values(src, indexes: Sequence[int], *, path: str = "",
                  band_names: Sequence[str] = (), errors: tuple = (), zero_nodata: bool = False,
                  stats: dict | None = None) -> list[np.ndarray]:
    """Valid raw values of the bands ``indexes`` in up to SAMPLE_GRID^2 windows of
    SAMPLE_PX^2 pixels spread evenly over the raster (a few blocks, whatever its size).

    Args:
        zero_nodata: also leave out pixels whose value is 0 in any band (Sentinel-2 NO_DATA).
        stats: when given, filled with ``pixels`` (pixels sampled) and ``any_zero`` (of them,
            pixels 0 in at least one band that is not masked otherwise).

    Returns:
        one float64 1-D array per band (masked pixels left out: nodata value, mask or alpha
        band, not finite).

    Raises:
        InputError: a read raising one of ``errors`` (naming the file, bands and window);
            other errors as they come.
    """
    from rasterio.windows import Window

    h, w = src.height, src.width
    size_r, size_c = min(SAMPLE_PX, h), min(SAMPLE_PX, w)
    rows = np.unique(np.linspace(0, h - size_r, min(SAMPLE_GRID, max(1, h // size_r))).astype(int))
    cols = np.unique(np.linspace(0, w - size_c, min(SAMPLE_GRID, max(1, w // size_c))).astype(int))
    out: list[list[np.ndarray]] = [[] for _ in indexes]
    pixels = any_zero = 0
    for r in rows:
        for c in cols:
            try:
                arr = src.read(list(indexes), window=Window(int(c), int(r), size_c, size_r),
                               masked=True)
            except errors as exc:
                raise InputError(
                    f"reading input raster '{path}' failed: band(s) "
                    f"{', '.join(band_names) or ', '.join(map(str, indexes))} (raster band(s) "
                    f"{', '.join(map(str, indexes))}), window rows {r}-{r + size_r - 1}, cols "
                    f"{c}-{c + size_c - 1} of the raster: {exc}") from exc
            masked = np.ma.getmaskarray(arr)
            zero = np.any((arr.data == 0) & ~masked, axis=0)
            pixels += int(zero.size)
            any_zero += int(zero.sum())
            if zero_nodata:
                masked = masked | zero[None]
            for k in range(len(indexes)):
                vals = np.asarray(arr.data[k][~masked[k]], dtype=np.float64)
                out[k].append(vals[np.isfinite(vals)])
    if stats is not None:
        stats.update(pixels=pixels, any_zero=any_zero)
    return [np.concatenate(v) if v else np.zeros(0) for v in out]


def implied_nodata(spec, values: Sequence[np.ndarray], *, declared: bool,
                   any_zero: int = 0, pixels: int = 0) -> tuple[bool, tuple | None, list[str]]:
    """The nodata rules a raster gets without declaring them (module docstring).

    Args:
        spec: the modality.
        values: per model band, sampled valid values in model units (for the log lines).
        declared: the raster declares a nodata value (or a mask band) for the bands read.
        any_zero, pixels: sampled pixels 0 in at least one band, and pixels sampled.

    Returns:
        (zero_nodata, valid_range, notes for the run log). ``zero_nodata`` only where the
        raster declares no nodata of its own: a declared nodata (or mask) is the file's word on
        what is missing, and with it a 0 may be data (reflectance with the offset removed, dark
        water in the SWIR).
    """
    notes: list[str] = []
    zero = is_s2_reflectance(spec) and not declared
    if zero and any_zero:
        notes.append(f"{100.0 * any_zero / max(pixels, 1):.0f} % of the sampled pixels are 0 in "
                     "at least one band and the raster declares no nodata value: pixels 0 in any "
                     "band are taken as nodata (0 is the NO_DATA value of Sentinel-2 products)")
    valid = ELEVATION_M_RANGE if is_elevation_m(spec) else None
    if valid is not None and values:
        lo, hi = valid
        v = np.concatenate([np.asarray(x, np.float64) for x in values])
        out = (v < lo) | (v > hi)
        if out.any():
            found = ", ".join(_fmt(x) for x in np.unique(v[out])[:3])
            notes.append(f"{100.0 * out.mean():.1f} % of the sampled values lie outside "
                         f"{lo:g} to {hi:g} m (found {found}): no land is that low or high (Dead "
                         "Sea shore about -430 m, Everest 8849 m), so they are taken as nodata "
                         "(an undeclared DEM void value)" + ("" if not declared else
                                                             " besides the declared nodata"))
    return zero, valid, notes


#: Where a raster says its Sentinel-2 processing level: dataset tags (ESA product metadata
#: names as GDAL's SENTINEL2 driver and our build_stack VRTs carry them) and the file name
#: (ESA product names: MSIL1C / MSIL2A).
_LEVEL_TAGS = ("PROCESSING_LEVEL", "PRODUCT_TYPE", "SENTINEL2_LEVEL", "PROCESSINGLEVEL")


def _s2_level(text: str) -> str | None:
    """``L1C`` / ``L2A`` named in ``text`` (Level-1C, S2MSI2A, MSIL2A, _L2A_...), else None."""
    t = re.sub(r"[^A-Z0-9]", "", text.upper())
    found = {lvl for lvl, keys in (("L1C", ("LEVEL1C", "MSI1C", "MSIL1C", "L1C")),
                                   ("L2A", ("LEVEL2A", "MSI2A", "MSIL2A", "L2A")))
             if any(k in t for k in keys)}
    return found.pop() if len(found) == 1 else None


def product_level_warning(spec, tags: dict, path: str) -> str | None:
    """A warning line when a raster says it is a Sentinel-2 processing level other than the
    one the model was trained on (``radiometry.product``, e.g. "Sentinel-2 L1C"), or None.
    The line does not name the file (the run log adds the files it concerns).

    Level-1C is top-of-atmosphere and Level-2A bottom-of-atmosphere (surface) reflectance (ESA,
    Sentinel-2 product types, sentiwiki.copernicus.eu/web/s2-products): the same units, other
    values (atmospheric correction lowers the visible bands most), so nothing in the values
    tells them apart with certainty; the raster's own metadata and name can.
    """
    rad = getattr(spec, "radiometry", None)
    if rad is None or not is_s2_reflectance(spec):
        return None
    trained = _s2_level(rad.product)
    if trained is None:
        return None
    upper = {str(k).upper(): str(v) for k, v in tags.items()}
    said = [(f"tag {k}={upper[k]}", _s2_level(upper[k])) for k in _LEVEL_TAGS if k in upper]
    said.append(("its file name", _s2_level(os.path.basename(path))))
    for where, level in said:
        if level is not None and level != trained:
            return (f"warning: the raster is Sentinel-2 {level} ({where}) but the model was "
                    f"trained on {rad.product}: {'surface' if level == 'L2A' else 'top-of-atmosphere'}"
                    " reflectance differs from what the model learned, so the map will differ "
                    f"from one made from {trained} products; use {trained} products, or a model "
                    f"trained on {level}")
    return None


def offset_warning(spec, values: Sequence[np.ndarray], calibration: Calibration,
                   when) -> str | None:
    """The run-log warning for Sentinel-2 data that look like processing baseline >= 04.00
    (DN + 1000) with the offset undeclared (module docstring), or None.

    Args:
        values: per model band, sampled valid values after calibration.
        when: acquisition date/datetime or None.
    """
    if when is None or not is_s2_reflectance(spec) or model_reflectance_factor(spec) != 10000.0:
        return None
    day = when.date() if isinstance(when, _dt.datetime) else when
    if day < PB04_DATE or any(b != 0.0 for b in calibration.bias):
        return None
    if any(np.asarray(v).size < MIN_VALUES for v in values) or not values:
        return None
    low = min(float(np.min(v)) for v in values)
    if low < 1000:
        return None
    return (f"warning: acquired on or after {PB04_DATE.isoformat()} (Sentinel-2 processing "
            "baseline 04.00 or later) and no sampled value of any band is below 1000: the data "
            "look like DN + 1000 with the offset undeclared, "
            "and the map will be wrong if so. If the product's BOA_ADD_OFFSET / "
            "RADIO_ADD_OFFSET is -1000, declare it: 'gdal_edit.py -offset -1000 FILE' (every "
            "band), or build the stack from the product with maestro:build_stack")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check_values(values: Sequence[np.ndarray], spec, *, path: str) -> None:
    """Refuse values clearly outside what the model was trained on (rules in the module
    docstring).

    Args:
        values: per model band, sampled valid values after gain/bias (model units).
        spec: the modality (contract ModalitySpec).

    Raises:
        InputError: saying what was expected and what was found.
    """
    usable = [np.asarray(v, np.float64) for v in values]
    if any(v.size < MIN_VALUES for v in usable):
        return
    rad = getattr(spec, "radiometry", None)
    if rad is not None:
        _check_against_range(usable, spec, rad, path)
    else:
        _check_against_scaling(usable, spec, path)


def _advice(spec, found_small: bool) -> str:
    factor = model_reflectance_factor(spec)
    if factor == 10000.0 and found_small:
        return (" If the file holds reflectance 0-1, convert it to reflectance x 10000, e.g. "
                "'gdal_translate -ot UInt16 -scale 0 1 0 10000 IN OUT' (a file of DN with a "
                "declared GDAL scale of 0.0001 is converted by the engine itself).")
    if factor == 1.0 and not found_small:
        return (" If the file holds reflectance x 10000 (DN), declare it with "
                "'gdal_edit.py -scale 0.0001 FILE' (and -offset -0.1 for DN + 1000 products "
                "of processing baseline 04.00 and later).")
    return ""


#: Elevations in metres outside this range do not exist on land (Dead Sea shore about -430 m,
#: Everest 8849 m): most values outside it mean other units.
ELEVATION_M_RANGE = (-1000.0, 9000.0)


def _without_void_constant(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``v`` without its out-of-range values when nearly all of them (>= 90 %) are one constant:
    a void fill (-32768, -9999...), nodata rather than other units."""
    out = v[(v < lo) | (v > hi)]
    if out.size == 0:
        return v
    u, c = np.unique(out, return_counts=True)
    return v[v != u[np.argmax(c)]] if c.max() >= 0.9 * out.size else v


def _check_against_range(values, spec, rad, path) -> None:
    n = len(values)
    if rad.quantity == "elevation":
        if rad.units.strip().lower() in ("m", "metre", "metres", "meter", "meters"):
            lo, hi = ELEVATION_M_RANGE
            values = [_without_void_constant(v, lo, hi) for v in values]
            if any(v.size < MIN_VALUES for v in values):
                return
            out = [float(np.mean((v < lo) | (v > hi))) for v in values]
            if all(f > 0.5 for f in out):
                found = np.percentile(values[0], [0.5, 99.5])
                raise InputError(
                    f"input raster '{path}' ({spec.name}) does not hold elevations in metres as "
                    f"the model was trained on ({rad.product}): {out[0]:.0%} of its values lie "
                    f"outside {lo:g} to {hi:g} m (found {_fmt(found[0])} to {_fmt(found[1])}); "
                    "convert it to metres first.")
        return
    both_sides = rad.quantity == "other"
    off_range, off_scale = [], []
    for band, v, (lo, hi) in zip(spec.bands, values, rad.value_range):
        w = max(hi - lo, 1e-12)
        inside = (v >= lo - 2 * w) & (v <= hi + 2 * w) if both_sides else v >= lo - 2 * w
        if np.mean(inside) < 0.5:
            off_range.append(band)
        mag_tr = max(abs(lo), abs(hi))
        mag_in = float(np.percentile(np.abs(v), 99.5))
        if mag_tr > 0 and (mag_in < mag_tr / 100 or mag_in > mag_tr * 100):
            off_scale.append(band)
    scale_test = rad.quantity in ("reflectance", "other")
    if len(off_range) * 2 >= n or (scale_test and len(off_scale) == n):
        b = (off_range or off_scale)[0]
        k = spec.bands.index(b)
        lo, hi = rad.value_range[k]
        found = np.percentile(values[k], [0.5, 50, 99.5])
        small = float(np.percentile(np.abs(values[k]), 99.5)) < max(abs(lo), abs(hi))
        raise InputError(
            f"input raster '{path}' ({spec.name}) does not hold what the model was trained on: "
            f"expected {rad.product} {rad.quantity} in {rad.units} (band {b}: 0.5-99.5th "
            f"percentile {_fmt(lo)} to {_fmt(hi)} in training), found {_fmt(found[0])} to "
            f"{_fmt(found[2])} (median {_fmt(found[1])}); bands off: "
            f"{', '.join(sorted(set(off_range) | set(off_scale), key=spec.bands.index))}."
            + _advice(spec, small))


def _check_against_scaling(values, spec, path) -> None:
    sc = spec.scaling
    if sc.transform == "log":
        negative = [float(np.mean(v < 0)) for v in values]
        if all(f > 0.5 for f in negative):
            raise InputError(
                f"input raster '{path}' ({spec.name}) holds mostly negative values "
                f"({min(negative):.0%} or more of every band): it looks like backscatter in dB, "
                "but the model takes linear power (it takes the logarithm itself). Convert it "
                "with 10 ** (dB / 10) first.")
        return
    mean = np.asarray(sc.mean, np.float64)
    std = np.asarray(sc.std, np.float64)
    hi_z = [float(np.percentile(np.abs((v - m) / s), 99.5)) for v, m, s in zip(values, mean, std)]
    med_z = [float(np.median(np.abs((v - m) / s))) for v, m, s in zip(values, mean, std)]
    raw = [float(np.percentile(np.abs(v), 99.5)) for v in values]
    if model_reflectance_factor(spec) and all(z < 1e-3 for z in hi_z) and max(raw) > 0:
        raise InputError(
            f"input raster '{path}' ({spec.name}) holds values about a thousand times smaller "
            f"than the model takes: band {spec.bands[0]} reaches {_fmt(raw[0])} (99.5th "
            f"percentile) while the model divides it by {_fmt(std[0])}, e.g. reflectance 0-1 "
            "given to a model trained on reflectance x 10000." + _advice(spec, True))
    if all(z > 1e3 for z in med_z):
        raise InputError(
            f"input raster '{path}' ({spec.name}) holds values about a thousand times larger "
            f"than the model takes: band {spec.bands[0]} has median {_fmt(np.median(values[0]))} "
            f"while the model divides it by {_fmt(std[0])}, e.g. reflectance x 10000 (DN) given "
            "to a model trained on reflectance 0-1." + _advice(spec, False))
