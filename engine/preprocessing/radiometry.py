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
- A declared scale of 1e-4 turns Sentinel-2 DN into reflectance 0-1; a model trained on
  reflectance x 10000 gets those values multiplied back (``k = 10000``, logged).

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


@dataclass(frozen=True)
class Calibration:
    """Per-band linear map from stored values to the model's units, in model band order.

    Attributes:
        gain, bias: ``value = raw * gain + bias`` (float64 tuples, one per model band).
        note: a line for the run log when something other than the identity is applied.
    """

    gain: tuple[float, ...]
    bias: tuple[float, ...]
    note: str | None = None

    @property
    def identity(self) -> bool:
        return all(g == 1.0 for g in self.gain) and all(b == 0.0 for b in self.bias)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``data * gain + bias`` in place on float32 [bands, ...] (NaN stays NaN)."""
        if self.identity:
            return data
        shape = (-1,) + (1,) * (data.ndim - 1)
        data *= np.asarray(self.gain, np.float32).reshape(shape)
        data += np.asarray(self.bias, np.float32).reshape(shape)
        return data


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
    s2 = sum(1 for b in spec.bands if _S2_NAME.match(b)) >= max(1, len(spec.bands) // 2)
    if not s2 or spec.scaling.transform != "none" or any(abs(m) > 0 for m in spec.scaling.mean):
        return None
    std = min(spec.scaling.std)
    if std >= 1000:
        return 10000.0
    if max(spec.scaling.std) <= 10:
        return 1.0
    return None


def plan_calibration(scales: Sequence[float | None], offsets: Sequence[float | None], spec, *,
                     path: str) -> Calibration:
    """Gain and bias per model band from the declared GDAL scale/offset of the bands read.

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
    factor = model_reflectance_factor(spec)
    if factor == 10000.0 and all(abs(s * 1e4 - 1.0) < 1e-6 for s in gains):
        k = 1e4
        note = ("GDAL band scale 0.0001 makes the values reflectance 0-1; the model takes "
                "reflectance x 10000: scale/offset applied, then x 10000")
    return Calibration(tuple(s * k for s in gains), tuple(o * k for o in biases), note)


def sample_values(src, indexes: Sequence[int], *, path: str = "",
                  band_names: Sequence[str] = (), errors: tuple = ()) -> list[np.ndarray]:
    """Valid raw values of the bands ``indexes`` in up to SAMPLE_GRID^2 windows of
    SAMPLE_PX^2 pixels spread evenly over the raster (a few blocks, whatever its size).

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
            for k in range(len(indexes)):
                band = arr[k]
                vals = np.asarray(band.compressed(), dtype=np.float64)
                out[k].append(vals[np.isfinite(vals)])
    return [np.concatenate(v) if v else np.zeros(0) for v in out]


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


def _check_against_range(values, spec, rad, path) -> None:
    n = len(values)
    if rad.quantity == "elevation":
        if rad.units.strip().lower() in ("m", "metre", "metres", "meter", "meters"):
            lo, hi = ELEVATION_M_RANGE
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
