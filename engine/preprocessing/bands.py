"""Band identity: which bands of a raster are the model's bands, matched by name.

A raster names its bands in one of these places (first found per band wins):

1. the GDAL band description (GeoTIFF ``<Item name="DESCRIPTION">``, ENVI ``band names``,
   rasterio ``descriptions``; the GDAL SENTINEL2 driver writes e.g. ``"B4, central
   wavelength 665 nm"``);
2. a band metadata item ``BANDNAME`` (GDAL SENTINEL2 driver, gdal.org/drivers/raster/sentinel2),
   ``BAND_NAME`` or ``NAME``;
3. a dataset metadata item ``BANDS`` listing one name per band, comma separated
   (``B02,B03,...``).

The colour interpretation is not a name: GeoTIFF writers set red/green/blue/alpha from the
TIFF photometric tag whatever the bands hold (TreeSatAI's aerial tiles store IR, G, B, R
flagged as red, green, blue, alpha).

Names are compared after normalisation (:func:`canonical_tokens`): upper case, split into
tokens at anything not a letter or digit, Sentinel-2 band tokens written one way
(``B2``, ``b02``, ``B02`` -> ``B02``; ``B8A``, ``B08A`` -> ``B8A``), colour words shortened
(``RED`` -> ``R``, ``NEAR INFRARED`` -> ``NIR``). A raster band *is* model band ``X`` when its
whole name is ``X`` or one of its tokens is ``X`` (``"B02 (490 nm)"``, ``"Sigma0_VV_db"``).

STAC common names: a band whose whole name is a common name of the STAC ``eo`` extension
(``eo:common_name``, github.com/stac-extensions/eo, "Common Band Names" table) also *is* the
Sentinel-2 band that name stands for (:data:`STAC_S2_COMMON_NAMES`, the Sentinel-2 mapping of
that table as STAC catalogues use it for their asset keys, e.g. Element 84's Earth Search
``sentinel-2-l2a``: coastal=B01, blue=B02, green=B03, red=B04, rededge1=B05, rededge2=B06,
rededge3=B07, nir=B08, nir08=B8A, nir09=B09, cirrus=B10, swir16=B11, swir22=B12). Only the
whole name counts: ``"B8A narrow NIR"`` is B8A, not B08.

Names that say nothing (``Band 1``, ``band_2``, ``Layer 3``, ``1``: what some writers put in
every description) count as no name.

Matching (:func:`match_bands`):
- a raster that names its bands (any band) is matched by name: the model's bands are
  reordered, picked from a raster that has more, or the raster is refused naming what it
  holds and what the model needs (bands the model needs that no name gives);
- only a raster that names no band at all is taken by position (the count must agree) and
  the run log says so;
- one exception: a one-band raster for a one-band modality (a DEM whose band is called
  ``height``) is taken whatever its name, logged (there is no order to get wrong).

An alpha band (colour interpretation alpha) is left out only when that makes the count agree
(an RGBA file for a 3-band model); otherwise it is counted like any band.

Pure Python; the rasterio dataset is only queried in :func:`raster_band_names`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import AbstractSet as Set
from typing import Sequence

from ..errors import InputError

#: Sentinel-2 band token: B1..B12, zero-padded or not, and B8A (also written B08A).
_S2_TOKEN = re.compile(r"^B0?(\d{1,2})(A?)$")
_SPLIT = re.compile(r"[^A-Z0-9]+")
#: Words that name the same band, normalised to one token.
_ALIASES = {"RED": "R", "GREEN": "G", "BLUE": "B", "NEARINFRARED": "NIR", "INFRARED": "NIR"}
#: Band metadata items naming a band (GDAL SENTINEL2 driver: BANDNAME).
BAND_NAME_ITEMS = ("BANDNAME", "BAND_NAME", "NAME")
#: Dataset metadata item listing the band names, comma separated.
BANDS_ITEM = "BANDS"
#: STAC eo common name (upper case) -> Sentinel-2 band (module docstring).
STAC_S2_COMMON_NAMES = {"COASTAL": "B01", "BLUE": "B02", "GREEN": "B03", "RED": "B04",
                        "REDEDGE1": "B05", "REDEDGE2": "B06", "REDEDGE3": "B07", "NIR": "B08",
                        "NIR08": "B8A", "NIR09": "B09", "CIRRUS": "B10", "SWIR16": "B11",
                        "SWIR22": "B12"}
#: Names that name nothing: "Band 1", "band_2", "Layer 3", "channel 4", "1".
_GENERIC = re.compile(r"^(BAND|LAYER|CHANNEL)?[\s_-]*\d+$")


def _token(tok: str) -> str:
    m = _S2_TOKEN.match(tok)
    if m and 1 <= int(m.group(1)) <= 12:
        return f"B{int(m.group(1))}A" if m.group(2) else f"B{int(m.group(1)):02d}"
    return _ALIASES.get(tok, tok)


def canonical_name(name: str) -> str:
    """The normalised whole name: ``" b2 "`` -> ``"B02"``, ``"Near infrared"`` -> ``"NIR"``."""
    upper = str(name).strip().upper()
    joined = _SPLIT.sub("", upper)
    if joined in _ALIASES:
        return _ALIASES[joined]
    tokens = [t for t in _SPLIT.split(upper) if t]
    if len(tokens) == 1:
        return _token(tokens[0])
    return " ".join(_token(t) for t in tokens)


def stac_band(name: str) -> str | None:
    """The Sentinel-2 band a STAC eo common name stands for (``"nir08"`` -> ``"B8A"``), None
    when the whole name is not one (module docstring)."""
    return STAC_S2_COMMON_NAMES.get(_SPLIT.sub("", str(name).strip().upper()))


def is_generic(name: str | None) -> bool:
    """True for names that name nothing (``Band 1``, ``1``, empty)."""
    return not name or not str(name).strip() or bool(_GENERIC.match(str(name).strip().upper()))


def canonical_tokens(name: str) -> set[str]:
    """Normalised tokens of a raster band's name plus its whole canonical name (and, for a
    STAC common name, the Sentinel-2 band it stands for).

    ``"B02 (490 nm)"`` -> ``{"B02", "490", "NM", "B02 490 NM"}``; ``"red"`` -> ``{"R", "B04"}``.
    """
    upper = str(name).strip().upper()
    tokens = {_token(t) for t in _SPLIT.split(upper) if t}
    tokens.add(canonical_name(name))
    stac = stac_band(name)
    if stac:
        tokens.add(stac)
    return tokens


def _whole(name: str) -> set[str]:
    """The names a band's whole name is: canonical, and the STAC common name's band."""
    out = {canonical_name(name)}
    stac = stac_band(name)
    if stac:
        out.add(stac)
    return out


def raster_band_names(src) -> list[str | None]:
    """The name of each band of an open rasterio dataset, None where it has none
    (sources in the module docstring, in that order)."""
    count = src.count
    names: list[str | None] = [None] * count
    descriptions = list(src.descriptions or [None] * count)
    listed: list[str | None] = [s.strip() for s in str(src.tags().get(BANDS_ITEM, "")).split(",")]
    listed = listed if len(listed) == count and all(listed) else [None] * count
    for i in range(count):
        tags = src.tags(i + 1)
        item = next((tags[k] for k in BAND_NAME_ITEMS if tags.get(k)), None)
        for candidate in (descriptions[i], item, listed[i]):
            if candidate and str(candidate).strip():
                names[i] = str(candidate).strip()
                break
    return names


def alpha_bands(src) -> set[int]:
    """1-based indexes of the dataset's alpha bands (colour interpretation alpha)."""
    from rasterio.enums import ColorInterp

    return {i + 1 for i, c in enumerate(src.colorinterp or []) if c == ColorInterp.alpha}


@dataclass(frozen=True)
class BandMatch:
    """Which raster bands feed the model, in the model's band order.

    Attributes:
        indexes: 1-based raster band index per model band (rasterio ``indexes=``).
        by: ``"name"`` or ``"position"``.
        note: a line for the run log (None when the raster's bands are the model's, by name,
            in order); it does not name the file (the caller groups files by note).
    """

    indexes: tuple[int, ...]
    by: str
    note: str | None = None


def _listing(names: Sequence[str | None]) -> str:
    return ", ".join(n if n else "(unnamed)" for n in names)


def match_bands(raster_names: Sequence[str | None], model_bands: Sequence[str], *, path: str,
                modality: str, alpha: Set[int] = frozenset()) -> BandMatch:
    """Match a raster's bands to the model's ``bands`` (rules in the module docstring).

    Args:
        raster_names: one name (or None) per raster band, as :func:`raster_band_names`.
        model_bands: the modality's ``bands`` from the model metadata, in model order.
        path, modality: for messages.
        alpha: 1-based indexes of alpha bands (left out only when that makes the count
            agree, see the module docstring).

    Returns:
        BandMatch.

    Raises:
        InputError: a band named by the model is missing or named twice; or, matching by
            position, the band count differs from the model's.
    """
    n = len(model_bands)
    data = [i for i in range(1, len(raster_names) + 1)]
    if alpha and len(data) != n and len(data) - len(set(alpha) & set(data)) == n:
        data = [i for i in data if i not in alpha]
    wanted = [canonical_name(b) for b in model_bands]
    named = {i: nm for i in data if (nm := raster_names[i - 1]) is not None and not is_generic(nm)}
    tokens = {i: canonical_tokens(nm) for i, nm in named.items()}
    listing = _listing([raster_names[i - 1] if i in named else None for i in data])
    if not named:
        if len(data) != n:
            raise InputError(f"input raster '{path}' has {len(data)} bands but the model's "
                             f"modality '{modality}' expects {n} ({', '.join(model_bands)})")
        return BandMatch(tuple(data), "position", "the raster names no bands: bands taken by "
                         f"position as {', '.join(model_bands)}")
    if n == 1 and len(data) == 1 and not any(wanted[0] in t for t in tokens.values()):
        return BandMatch(tuple(data), "name", f"its one band, named {listing}, taken as "
                         f"{model_bands[0]} (the model's one band)")
    chosen: list[int | None] = []
    for band, w in zip(model_bands, wanted):
        exact = [i for i in tokens if w in _whole(named[i])]
        hits = exact or [i for i, t in tokens.items() if w in t]
        if len(hits) > 1:
            raise InputError(f"input raster '{path}' ({modality}) names band {band} more than once "
                             f"(bands {', '.join(str(i) for i in hits)}: "
                             f"{_listing([raster_names[i - 1] for i in hits])})")
        chosen.append(hits[0] if hits else None)
    missing = [b for b, c in zip(model_bands, chosen) if c is None]
    if missing:
        what = ("none of them is one the model takes" if len(missing) == n else
                f"it lacks {', '.join(missing)}")
        raise InputError(
            f"input raster '{path}' ({modality}) names its bands {listing}: {what} (the model "
            f"needs {', '.join(model_bands)}; names may be Sentinel-2 band ids such as B02 or "
            f"B8A, or STAC common names such as blue or nir08). Rename the bands (band "
            f"descriptions, e.g. gdal_edit.py or QGIS layer properties), or remove the names to "
            f"have them taken by position.")
    indexes = tuple(int(c) for c in chosen if c is not None)    # none is None: no band missing
    note = None
    if indexes != tuple(data) or any(stac_band(named[i]) for i in indexes):
        note = (f"bands matched by name: reading raster bands {', '.join(map(str, indexes))} "
                f"of {len(raster_names)} ({_listing([raster_names[i - 1] for i in indexes])}) "
                f"as {', '.join(model_bands)}")
    return BandMatch(indexes, "name", note)
