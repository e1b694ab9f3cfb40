"""From "layers the user chose per modality parameter" to the engine's ``inputs`` dict.

Shared by the Processing algorithms and the dock, so both check the same things and say
the same words. Pure Python: no qgis import; of the engine, only the modality descriptions
(:mod:`engine.modalities`, pure Python) at import, the rest in :func:`to_engine_inputs`.

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

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


def parse_date_overrides(text: str | None) -> list[tuple[str | None, str, datetime.date]]:
    """Parse the ``DATES`` parameter.

    Format: entries separated by ``;`` or new lines, each ``[MODALITY:]LAYER=YYYY-MM-DD``
    where LAYER is a layer's file path, file name or layer name, and the optional
    ``MODALITY:`` prefix (``S2:``) restricts the match to that parameter. Example:
    ``S2:T33TVM_20200501.tif=2020-05-01; S2:scene_b.tif=2020-06-12``.

    Returns:
        (parameter name or None, layer key, date) per entry.

    Raises:
        PluginInputError: an entry without ``=`` or with a date that is not YYYY-MM-DD.
    """
    entries = []
    for raw in re.split(r"[;\n]", text or ""):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            raise PluginInputError(f"DATES entry '{item}' is not LAYER=YYYY-MM-DD")
        key, value = (s.strip() for s in item.rsplit("=", 1))
        if not _DATE_RE.match(value):
            raise PluginInputError(f"DATES entry '{item}': '{value}' is not a date YYYY-MM-DD")
        try:
            date = datetime.date.fromisoformat(value)
        except ValueError as exc:
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


def _matches(layer: LayerInput, key: str) -> bool:
    norm = os.path.normcase
    return key in (layer.name,) or norm(key) in (norm(layer.source),
                                                 norm(os.path.basename(layer.source)))


def apply_date_overrides(inputs: Mapping[str, Sequence[LayerInput]],
                         overrides: Iterable[tuple[str | None, str, datetime.date]]
                         ) -> dict[str, list[LayerInput]]:
    """Set the dates of the layers the overrides name.

    Args:
        inputs: modality name (lower case) -> layers (from :func:`match_modalities`).
        overrides: from :func:`parse_date_overrides`.

    Raises:
        PluginInputError: an entry matches no layer of the inputs.
    """
    out = {m: list(layers) for m, layers in inputs.items()}
    for modality, key, date in overrides:
        hit = False
        for m, layers in out.items():
            if modality is not None and parameter_name(m) != modality:
                continue
            for i, layer in enumerate(layers):
                if _matches(layer, key):
                    layers[i] = replace(layer, date=date)
                    hit = True
        if not hit:
            where = f" of {modality}" if modality else ""
            raise PluginInputError(f"DATES entry '{key}={date.isoformat()}' matches no input "
                                   f"layer{where} (use a layer's file path, file name or layer name)")
    return out


def to_engine_inputs(inputs: Mapping[str, Sequence[LayerInput]]) -> dict:
    """modality -> list of ``engine.api.SliceInput`` (imports the engine)."""
    from engine.api import SliceInput

    return {m: [SliceInput(layer.source, layer.date) for layer in layers]
            for m, layers in inputs.items()}
