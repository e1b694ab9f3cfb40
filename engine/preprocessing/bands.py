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

Matching (:func:`match_bands`):
- when at least one raster band carries one of the model's band names, the model's bands are
  taken by name: reordered, picked from a raster that has more, or refused naming the bands
  that are missing; a single unnamed raster band fills a single missing model band only when
  counts agree exactly (logged);
- when the raster names no band the model knows, bands are taken by position (the count must
  agree) and the run log says so.

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


def canonical_tokens(name: str) -> set[str]:
    """Normalised tokens of a raster band's name plus its whole canonical name.

    ``"B02 (490 nm)"`` -> ``{"B02", "490", "NM", "B02 490 NM"}``.
    """
    upper = str(name).strip().upper()
    tokens = {_token(t) for t in _SPLIT.split(upper) if t}
    tokens.add(canonical_name(name))
    return tokens


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
    names = {i: name for i in data if (name := raster_names[i - 1])}
    tokens = {i: canonical_tokens(name) for i, name in names.items()}
    recognised = any(w in t for t in tokens.values() for w in wanted)
    note: str | None
    if not recognised:
        if len(data) != n:
            named = f" (named {_listing([raster_names[i - 1] for i in data])})" if tokens else ""
            raise InputError(f"input raster '{path}' has {len(data)} bands{named} but the model's "
                             f"modality '{modality}' expects {n} ({', '.join(model_bands)})")
        if tokens:
            note = (f"band names ({_listing([raster_names[i - 1] for i in data])}) are none of "
                    f"the model's: bands taken by position as {', '.join(model_bands)}")
        else:
            note = f"the raster names no bands: bands taken by position as {', '.join(model_bands)}"
        return BandMatch(tuple(data), "position", note)

    chosen: list[int | None] = []
    for band, w in zip(model_bands, wanted):
        exact = [i for i in tokens if canonical_name(names[i]) == w]
        hits = exact or [i for i, t in tokens.items() if w in t]
        if len(hits) > 1:
            raise InputError(f"input raster '{path}' ({modality}) names band {band} more than once "
                             f"(bands {', '.join(str(i) for i in hits)}: "
                             f"{_listing([raster_names[i - 1] for i in hits])})")
        chosen.append(hits[0] if hits else None)
    missing = [b for b, c in zip(model_bands, chosen) if c is None]
    unnamed = [i for i in data if i not in tokens]
    note = None
    if missing and len(missing) == 1 and len(unnamed) == 1 and len(data) == n:
        k = chosen.index(None)
        chosen[k] = unnamed[0]
        note = (f"band {unnamed[0]} has no name: taken as {missing[0]}, the one model band the "
                "other names do not give")
        missing = []
    if missing:
        raise InputError(
            f"input raster '{path}' ({modality}) lacks band(s) {', '.join(missing)} that model "
            f"needs (it names its bands {_listing([raster_names[i - 1] for i in data])}; the "
            f"model takes {', '.join(model_bands)})")
    indexes = tuple(int(c) for c in chosen if c is not None)
    if note is None and indexes != tuple(data):
        note = (f"bands matched by name: reading raster bands {', '.join(map(str, indexes))} "
                f"of {len(raster_names)} as {', '.join(model_bands)}")
    return BandMatch(indexes, "name", note)
