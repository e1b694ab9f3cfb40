"""Band identity: which bands of a raster are the model's bands, matched by name.

A raster names its bands in one of these places (first found per band wins):

1. the GDAL band description (GeoTIFF ``<Item name="DESCRIPTION">``, ENVI ``band names``,
   rasterio ``descriptions``; the GDAL SENTINEL2 driver writes e.g. ``"B4, central
   wavelength 665 nm"``);
2. a band metadata item ``BANDNAME`` (GDAL SENTINEL2 driver, gdal.org/drivers/raster/sentinel2),
   ``BAND_NAME`` or ``NAME``;
3. a dataset metadata item ``BANDS`` listing one name per band, comma separated
   (``B02,B03,...``).

A VRT whose bands have no names of their own (no description or band item on any band: what
``gdalbuildvrt -separate S2_<date>.vrt T33TVM_<date>_B*.tif`` writes) is named by its source
files: each band is the Sentinel-2 band its source file name names (``..._B8A.tif`` -> B8A,
:func:`band_of_name`), only when every band gets one and no two the same
(:func:`derive_source_names`). Such per-band names take precedence over a ``BANDS`` tag. When
only some bands get one, or two bands the same, the names are not used, and the run log says
so in a warning naming the bands (the shell glob ``_B*.tif`` puts B8A after B12).

Names that disagree (a band's description or source file says B8A, the ``BANDS`` tag says B11
for that band) give a warning naming both; the per-band name is used: GDAL moves a band's
description and VRT source with the band when it reorders bands (``gdal_translate -b``,
``gdalbuildvrt -b``), and copies a dataset tag as it was. A stale ``BANDS`` tag on a raster
with no other names (a copy that reordered the bands and kept the tag) cannot be told from the
file itself.

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
- only a raster that names no band at all (nor its VRT source files, see above) is taken by
  position (the count must agree) and the run log says so;
- one exception: a one-band raster for a one-band modality (a DEM whose band is called
  ``height``) is taken whatever its name, logged (there is no order to get wrong).

An alpha band (colour interpretation alpha) is left out only when that makes the count agree
(an RGBA file for a 3-band model); otherwise it is counted like any band.

Pure Python; the rasterio dataset is only queried in :func:`raster_band_names`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import AbstractSet as Set
from typing import Iterable, List, Optional, Sequence

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
#: The Sentinel-2 bands in canonical spelling.
_S2_IDS = frozenset([f"B{i:02d}" for i in range(1, 13)] + ["B8A"])
#: Names that name nothing: "Band 1", "band_2", "Layer 3", "channel 4", "1".
_GENERIC = re.compile(r"^(BAND|LAYER|CHANNEL)?[\s_-]*\d+$")



#: A Sentinel-2 band token in a file name (B2, B02, B8A...) and what splits a name into tokens.
_BAND_TOKEN = re.compile(r"^B0?(\d{1,2})(A?)$", re.IGNORECASE)
_NAME_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def band_of_name(path: str) -> str | None:
    """The Sentinel-2 band a file name names (``s2_B8A.jp2`` -> ``B8A``, ``x_B2_10m.tif`` ->
    ``B02``), ``SCL`` for a scene classification file, or None (no or several band tokens)."""
    stem = os.path.basename(path).split(".")[0]
    found = set()
    for tok in _NAME_SPLIT.split(stem):
        if tok.upper() == "SCL":
            found.add("SCL")
            continue
        m = _BAND_TOKEN.match(tok)
        if m and 1 <= int(m.group(1)) <= 12:
            found.add(f"B{int(m.group(1))}A" if m.group(2) else f"B{int(m.group(1)):02d}")
    return found.pop() if len(found) == 1 else None


def canonical_band(name: str) -> str:
    """A model band name in Sentinel-2 spelling (``B2`` -> ``B02``); other names unchanged."""
    m = _BAND_TOKEN.match(str(name).strip())
    if m and 1 <= int(m.group(1)) <= 12:
        return f"B{int(m.group(1))}A" if m.group(2) else f"B{int(m.group(1)):02d}"
    return str(name).strip().upper()


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


class RasterBandNames(List[Optional[str]]):
    """One name (or None) per raster band, as :func:`raster_band_names` finds them: a list,
    plus where the names come from and what finding them has to say.

    Attributes:
        origin: ``"vrt-sources"`` when the names are derived from a VRT's source file names
            (:func:`derive_source_names`), None when they are the raster's own.
        warnings: run-log lines (each starts with ``warning:``) for names that disagree or
            that could not be derived for every band; :func:`match_bands` puts them in its
            note.
    """

    def __init__(self, names: Iterable[Optional[str]] = (), origin: Optional[str] = None,
                 warnings: Iterable[str] = ()) -> None:
        super().__init__(names)
        self.origin = origin
        self.warnings = tuple(warnings)


#: :attr:`RasterBandNames.origin` of names derived from a VRT's source file names.
FROM_VRT_SOURCES = "vrt-sources"
#: VRT source elements whose ``SourceFilename`` is a band's data (gdal.org/drivers/raster/vrt).
_VRT_SOURCES = ("SimpleSource", "ComplexSource", "AveragedSource", "KernelFilteredSource",
                "NoDataFromMaskSource")


def vrt_band_sources(xml: str) -> dict[int, list[tuple[str, str]]]:
    """The sources of each band of a VRT, from its XML.

    Args:
        xml: the VRT document (the file's text, or GDAL's ``xml:VRT`` metadata domain).

    Returns:
        1-based band -> ``[(source file name, source band), ...]`` (``SourceFilename`` as
        written, relative or not; ``SourceBand`` as written, ``"1"`` when absent,
        ``"mask,1"`` for a mask band). Bands without file sources (a warped VRT, a band of
        derived pixel functions with no source) are absent or empty. Unparsable XML: ``{}``.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    out: dict[int, list[tuple[str, str]]] = {}
    for k, band in enumerate(root.findall("VRTRasterBand"), 1):
        try:
            index = int(band.get("band", k))
        except ValueError:
            index = k
        found = []
        for source in band:
            if source.tag in _VRT_SOURCES and source.findtext("SourceFilename"):
                found.append((str(source.findtext("SourceFilename")).strip(),
                              (source.findtext("SourceBand") or "1").strip()))
        out[index] = found
    return out


def source_band_name(sources: Sequence[tuple[str, str]]) -> Optional[str]:
    """The Sentinel-2 band a VRT band's sources name: the band every source's file name names
    (:func:`band_of_name`, ``T33TVM_20150711T100008_B8A.tif`` -> ``B8A``),
    each source being band 1 of its file (a file name says nothing of the other bands of a
    multi-band file); None when there is no source, or one names no band or another band."""

    names = {band_of_name(path.replace("\\", "/")) if band == "1" else None
             for path, band in sources}
    return names.pop() if len(names) == 1 else None


def derive_source_names(sources: Sequence[Sequence[tuple[str, str]]]
                        ) -> tuple[list[Optional[str]] | None, Optional[str]]:
    """Band names from each band's VRT sources (:func:`source_band_name`).

    Args:
        sources: per raster band (in band order), its ``(file name, source band)`` list.

    Returns:
        ``(names, None)`` when every band gets a name and no two the same; ``(None, warning)``
        when only some do or two share one (the warning names the bands: the names are not
        used); ``(None, None)`` when no band gets a name (nothing to say).
    """
    names = [source_band_name(s) for s in sources]
    if not any(names):
        return None, None
    import os

    def which(i: int) -> str:
        files = sorted({os.path.basename(p.replace("\\", "/")) for p, _ in sources[i]})
        return f"band {i + 1} ({', '.join(files) or 'no source file'})"

    unnamed = [which(i) for i, n in enumerate(names) if n is None]
    shared = {n: [i for i, m in enumerate(names) if m == n] for n in names if n}
    twice = [f"{', '.join(which(i) for i in idx)} all name {n}"
             for n, idx in shared.items() if len(idx) > 1]
    if not unnamed and not twice:
        return names, None
    problems = ([f"{'; '.join(unnamed)} name no Sentinel-2 band"] if unnamed else []) + twice
    return None, (f"warning: the raster's bands have no descriptions and its VRT source file "
                  f"names do not name each band once ({'; '.join(problems)}), so the source "
                  f"names are not used")


def _s2_band(name: Optional[str]) -> Optional[str]:
    """The one Sentinel-2 band a name names (``"B8A narrow NIR"`` -> B8A, ``"nir08"`` -> B8A),
    else None: what two names of one band are compared by."""
    if not name or is_generic(name):
        return None
    found = canonical_tokens(name) & _S2_IDS
    return found.pop() if len(found) == 1 else None


def _disagreement(chosen: Sequence[Optional[str]], chosen_by: str,
                  other: Sequence[Optional[str]], other_by: str) -> Optional[str]:
    """A warning when per-band names and other names say different Sentinel-2 bands for the
    same raster band (None when they agree wherever both name one)."""
    differ = [i for i, (a, b) in enumerate(zip(chosen, other))
              if _s2_band(a) and _s2_band(b) and _s2_band(a) != _s2_band(b)]
    if not differ:
        return None
    return (f"warning: the {chosen_by} ({_listing(chosen)}) and the {other_by} "
            f"({_listing(other)}) name bands {', '.join(str(i + 1) for i in differ)} "
            f"differently: the {chosen_by} are used (GDAL moves a band's description and VRT "
            f"source with the band when it reorders bands, and copies a dataset tag as it was); "
            f"check the bands and correct or remove the wrong names")


def raster_band_names(src) -> RasterBandNames:
    """The name of each band of an open rasterio dataset, None where it has none (sources and
    precedence in the module docstring: description, band item, names derived from a VRT's
    source files, ``BANDS`` tag).

    Returns:
        RasterBandNames: the names (a list), where they come from (``origin``), and warnings
        for names that disagree or could not be derived for every band.
    """
    count = src.count
    descriptions = list(src.descriptions or [None] * count)
    listed: list[str | None] = [s.strip() for s in str(src.tags().get(BANDS_ITEM, "")).split(",")]
    listed = listed if len(listed) == count and all(listed) else [None] * count
    own: list[str | None] = [None] * count
    for i in range(count):
        tags = src.tags(i + 1)
        item = next((tags[k] for k in BAND_NAME_ITEMS if tags.get(k)), None)
        for candidate in (descriptions[i], item):
            if candidate and str(candidate).strip():
                own[i] = str(candidate).strip()
                break
    warnings: list[str] = []
    derived: list[str | None] | None = None
    partial: list[str | None] = [None] * count
    if getattr(src, "driver", None) == "VRT":
        try:
            xml = str(src.tags(ns="xml:VRT").get("xml:VRT") or "")
        except Exception:  # noqa: BLE001 (no VRT XML to read: no derived names)
            xml = ""
        per_band = vrt_band_sources(xml) if xml else {}
        sources = [per_band.get(i + 1, []) for i in range(count)]
        partial = [source_band_name(s) for s in sources]
        if not any(n and not is_generic(n) for n in own):
            derived, warning = derive_source_names(sources)
            if warning:
                warnings.append(warning)
    if derived is not None:
        names, origin, chosen_by = derived, FROM_VRT_SOURCES, "VRT source file names"
    else:
        names = [o if o else t for o, t in zip(own, listed)]
        origin = None
        chosen_by = "band descriptions" if any(d and str(d).strip() for d in descriptions) \
            else "band metadata names"
        if any(partial) and any(own):
            sourced = _disagreement(own, chosen_by, partial, "VRT source file names")
            if sourced:
                warnings.append(sourced)
    if any(listed) and (derived is not None or any(own)):
        stale = _disagreement(names, chosen_by, listed, f"dataset tag {BANDS_ITEM}")
        if stale:
            warnings.append(stale)
    return RasterBandNames(names, origin, warnings)


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
        raster_names: one name (or None) per raster band, as :func:`raster_band_names` (its
            ``origin`` and ``warnings``, when given, go into the note).
        model_bands: the modality's ``bands`` from the model metadata, in model order.
        path, modality: for messages.
        alpha: 1-based indexes of alpha bands (left out only when that makes the count
            agree, see the module docstring).

    Returns:
        BandMatch; its note starts with the warnings of ``raster_names`` and says when the
        names come from a VRT's source file names.

    Raises:
        InputError: a band named by the model is missing or named twice; or, matching by
            position, the band count differs from the model's.
    """
    match = _match(raster_names, model_bands, path=path, modality=modality, alpha=alpha)
    warnings = tuple(getattr(raster_names, "warnings", ()))
    if not warnings:
        return match
    return BandMatch(match.indexes, match.by, "; ".join(warnings + ((match.note,) if match.note
                                                                    else ())))


def _match(raster_names: Sequence[str | None], model_bands: Sequence[str], *, path: str,
           modality: str, alpha: Set[int]) -> BandMatch:
    """:func:`match_bands` without the warnings of ``raster_names``."""
    sourced = getattr(raster_names, "origin", None) == FROM_VRT_SOURCES
    named_by = "names its bands (by its VRT source file names)" if sourced else "names its bands"
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
            f"input raster '{path}' ({modality}) {named_by} {listing}: {what} (the model "
            f"needs {', '.join(model_bands)}; names may be Sentinel-2 band ids such as B02 or "
            f"B8A, or STAC common names such as blue or nir08). Give each band the name of the "
            f"band it holds (band descriptions: gdal_edit.py, a VRT's <Description>, rasterio "
            f"set_band_description), or give the raster the bands the model needs; a raster "
            f"without names is read by position, and nothing then checks the order.")
    indexes = tuple(int(c) for c in chosen if c is not None)    # none is None: no band missing
    note = None
    origin = ("bands named by their VRT source file names (the raster has no band names) and "
              if sourced else "bands ")
    if indexes != tuple(data) or any(stac_band(named[i]) for i in indexes):
        note = (f"{origin}matched by name: reading raster bands "
                f"{', '.join(map(str, indexes))} of {len(raster_names)} "
                f"({_listing([raster_names[i - 1] for i in indexes])}) "
                f"as {', '.join(model_bands)}")
    elif sourced:
        note = (f"{origin}matched by name: raster bands {_listing(list(raster_names))}, in the "
                f"model's order")
    return BandMatch(indexes, "name", note)
