"""What each MAESTRO modality is: one description per modality (contract layer).

A model's metadata says what *that model* takes (``engine.contract.ModalitySpec``: bands in
its order, its grid, its scaling); this module says what a modality is whatever the model or
dataset: its contract name, the title the plugin shows, its bands in MAESTRO's datasets,
native resolution, fusion group, MAESTRO's constant scaling and the radiometry an export
declares by default. The plugin (``maestro_plugin/inputs.py``: one input parameter per
modality), the training recipes (divisors) and the contract
(:attr:`engine.contract.ModalitySpec.description`) read it.

Sources: MAESTRO's datasets and constant scalings (official: maestro/conf/dataset/*.py and
maestro/dataset/dataset.py): aerial and SPOT / 255, DEM / 1000, Sentinel-2 / 5000,
Sentinel-1 log then / 5 (PASTIS-HD keeps its own: S2 / 10000, S1 / 20 without log, declared
by that dataset's table in training/datasets/pastis.py). Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

#: Sentinel-2 bands MAESTRO uses (10 and 20 m bands), in its datasets' order.
S2_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


@dataclass(frozen=True)
class Modality:
    """One modality.

    Attributes:
        name: contract name (lower case; the ONNX input name of a model that takes it).
        title: what the plugin calls it (Processing parameter, dock row).
        bands: band names in MAESTRO's datasets (FLAIR-HUB order where datasets differ).
        gsd_m: native pixel size, metres (datasets resample: FLAIR-HUB S2 is 10.24 m).
        group: fusion group (modalities of one group share an encoder: both S1 orbits).
        time_series: several dates per item (False: one date).
        divisor, log: MAESTRO's constant scaling ``f(x) / divisor``, ``f`` = log when
            ``log`` (contract scaling ``mean 0, std divisor``).
        product, quantity, units: the default ``radiometry`` an export declares
            (docs/model-contract.md; ``quantity`` one of reflectance, backscatter,
            elevation, other).
    """

    name: str
    title: str
    bands: tuple[str, ...]
    gsd_m: float
    group: str
    time_series: bool
    divisor: float
    log: bool
    product: str
    quantity: str
    units: str

    @property
    def parameter(self) -> str:
        """The plugin's parameter name (upper case): ``s1_asc`` -> ``S1_ASC``."""
        return self.name.upper()

    def scaling(self, nbands: int | None = None) -> dict[str, Any]:
        """The contract's ``scaling`` object (``nbands`` default: this modality's bands)."""
        n = len(self.bands) if nbands is None else nbands
        return {"transform": "log" if self.log else "none", "mean": [0.0] * n,
                "std": [float(self.divisor)] * n}

    def radiometry(self, value_range: Sequence[Sequence[float]],
                   product: str | None = None) -> dict[str, Any]:
        """The contract's ``radiometry`` object with the measured per-band ``value_range``
        ([lo, hi] per band) and this modality's product, quantity and units."""
        return {"product": product or self.product, "quantity": self.quantity,
                "units": self.units, "value_range": [[float(lo), float(hi)]
                                                     for lo, hi in value_range]}


def _catalogue(*items: Modality) -> dict[str, Modality]:
    return {m.name: m for m in items}


#: Every modality MAESTRO's datasets have (FLAIR-HUB, TreeSatAI-TS, PASTIS-HD, S2-NAIP), in
#: the order the plugin lists them. ``s1`` is Sentinel-1 as one modality (S2-NAIP's ``sen1``).
MODALITIES: dict[str, Modality] = _catalogue(
    Modality("aerial", "Aerial orthophoto (RGB / RGBI)", ("NIR", "R", "G", "B"), 0.2, "aerial",
             False, 255.0, False, "aerial orthophoto", "other", "DN (8 bit)"),
    Modality("dem", "Elevation model (DEM)", ("DSM", "DTM"), 0.2, "dem", False, 1000.0, False,
             "digital elevation model", "elevation", "m"),
    Modality("s2", "Sentinel-2 time series", S2_BANDS, 10.0, "s2", True, 5000.0, False,
             "Sentinel-2", "reflectance", "reflectance x 10000"),
    Modality("s1_asc", "Sentinel-1 ascending time series", ("VV", "VH"), 10.0, "s1", True, 5.0,
             True, "Sentinel-1 GRD ascending", "backscatter", "linear power"),
    Modality("s1_desc", "Sentinel-1 descending time series", ("VV", "VH"), 10.0, "s1", True,
             5.0, True, "Sentinel-1 GRD descending", "backscatter", "linear power"),
    Modality("s1", "Sentinel-1 time series (one modality)", ("VV", "VH"), 10.0, "s1", True, 5.0,
             True, "Sentinel-1 GRD", "backscatter", "linear power"),
    Modality("spot", "SPOT 6-7 image", ("R", "G", "B"), 1.0, "spot", False, 255.0, False,
             "SPOT 6-7", "other", "DN (8 bit)"),
)


def describe(name: str) -> Modality | None:
    """The description of modality ``name`` (any case), or None for a modality MAESTRO's
    datasets do not have (a model may still take it; the plugin then has no parameter)."""
    return MODALITIES.get(name.lower())
