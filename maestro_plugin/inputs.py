"""From "layers the user chose per modality parameter" to the engine's ``inputs`` dict.

Shared by the Processing algorithms and the dock, so both check the same things and say
the same words. Pure Python: no qgis import; of the engine, only the modality descriptions
(:mod:`engine.modalities`, pure Python) at import, the rest in :func:`to_engine_inputs` and
:func:`parse_date_value` (the command line's date parser).

Vocabulary: a *parameter name* is the modality name in upper case (``S2``, ``DEM``,
``S1_ASC``...), the key of the Processing parameter and of the dock row; the engine and the
model metadata use the lower-case *modality name*.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from engine.modalities import MODALITIES

#: Modalities an algorithm has a parameter for (Processing declares parameters before the
#: model is known): MAESTRO's modalities, one per description in :mod:`engine.modalities`.
MODALITY_PARAMS = tuple(m.parameter for m in MODALITIES.values())

#: Parameter name -> the modality's title (engine.modalities).
MODALITY_TITLES = {m.parameter: m.title for m in MODALITIES.values()}

class PluginInputError(ValueError):
    """The layers or parameters given do not fit the model (message names the parameter)."""


@dataclass(frozen=True)
class LayerInput:
    """One raster the user chose.

    Attributes:
        source: what GDAL opens (a file path for file rasters).
        name: the layer name shown to the user (for messages and date overrides).
        date: acquisition date override; None = let the engine read it (tags, file name).
    """

    source: str
    name: str = ""
    date: datetime.date | None = None


def parameter_name(modality: str) -> str:
    """``s1_asc`` -> ``S1_ASC``."""
    return modality.upper()


def describe_modality(spec) -> str:
    """One line about what the model expects for a modality (for messages and the dock)."""
    if spec.max_dates == 1:
        dates = "1 layer"
    elif spec.min_dates == spec.max_dates:
        dates = f"{spec.min_dates} layers (one per date)"
    else:
        dates = f"{spec.min_dates} to {spec.max_dates} layers (one per date; more are subsampled)"
    return (f"{parameter_name(spec.name)}: {dates}, {len(spec.bands)} band"
            f"{'s' if len(spec.bands) != 1 else ''} ({', '.join(spec.bands)}), {spec.gsd_m:g} m")


def match_modalities(meta, given: Mapping[str, Sequence[LayerInput]]) -> dict[str, list[LayerInput]]:
    """Check the layers given per parameter against the model's modalities.

    Args:
        meta: the model's ``engine.contract.ModelMetadata``.
        given: parameter name (upper case) -> layers; empty lists count as not given.

    Returns:
        modality name (lower case, as the engine wants) -> layers, in the order given.

    Raises:
        PluginInputError: the model needs a modality with no parameter here, a modality
            the model needs has no layer, a parameter the model does not use has layers,
            or a single-date modality has several layers.
    """
    given = {k.upper(): list(v) for k, v in given.items() if v}
    needed = {parameter_name(m.name): m for m in meta.modalities}
    unsupported = [p for p in needed if p not in MODALITY_PARAMS]
    if unsupported:
        raise PluginInputError(
            f"model '{meta.name}' uses the modalities {', '.join(unsupported)}, for which this "
            f"plugin has no input parameter (known: {', '.join(MODALITY_PARAMS)})")
    missing = [p for p in needed if p not in given]
    if missing:
        raise PluginInputError(
            f"model '{meta.name}' needs the modalit{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)}: set "
            + "; ".join(describe_modality(needed[p]) for p in missing))
    unexpected = [p for p in given if p not in needed]
    if unexpected:
        raise PluginInputError(
            f"parameter{'s' if len(unexpected) > 1 else ''} {', '.join(unexpected)} "
            f"{'were' if len(unexpected) > 1 else 'was'} given but model '{meta.name}' does not "
            f"use {'them' if len(unexpected) > 1 else 'it'} (it uses {', '.join(needed)})")
    out = {}
    for pname, spec in needed.items():
        layers = given[pname]
        if spec.max_dates == 1 and len(layers) > 1:
            raise PluginInputError(
                f"{pname} is a single-date modality for model '{meta.name}': give one layer, "
                f"not {len(layers)}")
        if len(layers) < spec.min_dates:
            raise PluginInputError(
                f"{pname}: model '{meta.name}' needs at least {spec.min_dates} dates, "
                f"{len(layers)} layer{'s' if len(layers) != 1 else ''} given")
        out[spec.name] = layers
    return out


def parse_date_value(value: str) -> datetime.date:
    """One DATES date, in the formats the command line's ``--date`` takes.

    Calls the engine's own parser (:func:`engine.cli_common.parse_date`, i.e.
    ``datetime.date.fromisoformat``), so DATES and ``--date`` accept the same texts:
    ``2015-07-12`` and ``20150712`` (and the other ISO 8601 calendar/week forms of the
    Python in use).

    Raises:
        PluginInputError: not such a date (message says why, e.g. the month is out of range).
    """
    import argparse

    from engine.cli_common import parse_date

    value = value.strip()
    if not value or "=" in value:
        raise PluginInputError(f"'{value}' is not a date YYYY-MM-DD (or YYYYMMDD)")
    try:
        return parse_date(f"x=x={value}")[2]
    except argparse.ArgumentTypeError as exc:
        why = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise PluginInputError(f"'{value}' is not a date YYYY-MM-DD (or YYYYMMDD){why}") from exc


def parse_date_overrides(text: str | None) -> list[tuple[str | None, str, datetime.date]]:
    """Parse the ``DATES`` parameter.

    Format: entries separated by ``;`` or new lines, each ``[MODALITY:]LAYER=DATE`` where
    LAYER is a layer's file path, file name or layer name, DATE is ``YYYY-MM-DD`` or
    ``YYYYMMDD`` (what the command line's ``--date`` takes: :func:`parse_date_value`), and
    the optional ``MODALITY:`` prefix (``S2:``) restricts the match to that parameter.
    Example: ``S2:T33TVM_20200501.tif=2020-05-01; S2:scene_b.tif=20200612``. Which layer
    an entry names is decided by :func:`apply_date_overrides` (a LAYER naming several
    layers is refused there).

    Returns:
        (parameter name or None, layer key, date) per entry.

    Raises:
        PluginInputError: an entry without ``=``, naming no layer, or with a date that is
            not YYYY-MM-DD / YYYYMMDD.
    """
    entries = []
    for raw in re.split(r"[;\n]", text or ""):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            raise PluginInputError(f"DATES entry '{item}' is not LAYER=YYYY-MM-DD")
        key, value = (s.strip() for s in item.rsplit("=", 1))
        try:
            date = parse_date_value(value)
        except PluginInputError as exc:
            raise PluginInputError(f"DATES entry '{item}': {exc}") from exc
        modality = None
        prefix, sep, rest = key.partition(":")
        # "S2:name" is a modality prefix; "C:\path" (a Windows drive) is not.
        if sep and prefix.upper() in MODALITY_PARAMS:
            modality, key = prefix.upper(), rest.strip()
        if not key:
            raise PluginInputError(f"DATES entry '{item}' names no layer")
        entries.append((modality, key, date))
    return entries


def _full_path(path: str) -> str:
    """A path in the form two spellings of one file compare equal in (absolute, normalised,
    case-folded where the file system is)."""
    return os.path.normcase(os.path.abspath(path))


def _same_path(layer: LayerInput, key: str) -> bool:
    return key == layer.source or _full_path(key) == _full_path(layer.source)


def _same_name(layer: LayerInput, key: str) -> bool:
    norm = os.path.normcase
    return key == layer.name or norm(key) == norm(os.path.basename(layer.source))


def _ambiguous(entry, key, date, hits, by_path) -> str:
    """The message for a DATES entry matching several layers (``hits``: (modality, index,
    layer)): names the entry and the layers, says how to name one."""
    def label(m, layer):
        base = os.path.basename(layer.source)
        extra = (f" (layer '{layer.name}')" if layer.name
                 and layer.name not in (base, os.path.splitext(base)[0]) else "")
        return f"{parameter_name(m)} {layer.source}{extra}"

    day = date.isoformat()
    hints = []
    if not by_path:
        hints.append(f"give each layer's full file path, e.g. '{hits[0][2].source}={day}'")
    if len({m for m, _, _ in hits}) > 1:
        hints.append(f"prefix the modality, e.g. '{parameter_name(hits[0][0])}:{key}={day}'")
    return (f"DATES entry '{entry}' matches {len(hits)} input layers "
            f"({'; '.join(label(m, layer) for m, _, layer in hits)}): which one it dates is "
            f"ambiguous; {', or '.join(hints)}")


def apply_date_overrides(inputs: Mapping[str, Sequence[LayerInput]],
                         overrides: Iterable[tuple[str | None, str, datetime.date]]
                         ) -> dict[str, list[LayerInput]]:
    """Set the dates of the layers the overrides name.

    Each entry names one layer: the layer whose file path is the key (relative paths are
    taken from the current folder) if there is one, else the layer whose file name or layer
    name is the key. The same file given twice in one modality counts as one layer.

    Args:
        inputs: modality name (lower case) -> layers (from :func:`match_modalities`).
        overrides: from :func:`parse_date_overrides`.

    Raises:
        PluginInputError: an entry matches no layer of the inputs; an entry matches more
            than one layer (several folders holding files of one name, say: the message names
            the layers and says to give the full path, or the ``MODALITY:`` prefix); or two
            entries give one layer different dates.
    """
    out = {m: list(layers) for m, layers in inputs.items()}
    given: dict[tuple[str, int], tuple[str, datetime.date]] = {}
    for modality, key, date in overrides:
        entry = f"{(modality + ':') if modality else ''}{key}={date.isoformat()}"
        candidates = [(m, i, layer) for m, layers in out.items()
                      if modality is None or parameter_name(m) == modality
                      for i, layer in enumerate(layers)]
        # a full path wins over a file or layer name (another folder's file of that name)
        hits = [c for c in candidates if _same_path(c[2], key)]
        by_path = bool(hits)
        hits = hits or [c for c in candidates if _same_name(c[2], key)]
        if not hits:
            where = f" of {modality}" if modality else ""
            raise PluginInputError(f"DATES entry '{entry}' matches no input "
                                   f"layer{where} (use a layer's file path, file name or layer name)")
        distinct = {(m, _full_path(layer.source)) for m, _, layer in hits}
        if len(distinct) > 1:
            raise PluginInputError(_ambiguous(entry, key, date, hits, by_path))
        for m, i, layer in hits:
            before = given.get((m, i))
            if before is not None and before[1] != date:
                raise PluginInputError(
                    f"DATES entries '{before[0]}' and '{entry}' give the layer "
                    f"{layer.source} two dates ({before[1].isoformat()}, {date.isoformat()})")
            given[(m, i)] = (entry, date)
            out[m][i] = replace(layer, date=date)
    return out


def to_engine_inputs(inputs: Mapping[str, Sequence[LayerInput]]) -> dict:
    """modality -> list of ``engine.api.SliceInput`` (imports the engine)."""
    from engine.api import SliceInput

    return {m: [SliceInput(layer.source, layer.date) for layer in layers]
            for m, layers in inputs.items()}
