"""The model contract: the metadata a MAESTRO ONNX file carries, parsed and validated.

This is the one implementation of ``docs/model-contract.md``. The training exporter
builds its metadata with :func:`build_metadata` and the engine reads it back with
:func:`read_model_metadata`; both go through :func:`parse_metadata`, so a field the
engine needs cannot be missing from what the exporter writes.

Pure Python (json + dataclasses); onnx/onnxruntime are imported only where a file is
read, so this module loads everywhere.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from .errors import ContractError

#: Key of the JSON document in the ONNX ``metadata_props``.
METADATA_KEY = "maestro"
#: Schema version this engine writes and reads.
SCHEMA_VERSION = 1
TASKS = ("segmentation", "classification", "embedding")
#: Output tensor name per task (see docs/model-contract.md).
OUTPUT_NAMES = {"segmentation": "logits", "classification": "logits", "embedding": "embeddings"}
#: Name of the extra input holding the date-encoding origin.
REF_DATE_INPUT = "ref_date"
SCALING_TRANSFORMS = ("none", "log")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Scaling:
    """Per-band input normalisation: ``x' = (f(x) - mean) / std``.

    ``f`` is the identity (``transform="none"``) or ``log(max(x, 1e-10))`` (``"log"``,
    as MAESTRO does for Sentinel-1 backscatter, official: maestro/dataset/dataset.py).
    MAESTRO itself only divides by a constant (``mean=0``, ``std=norm_fac``).
    """

    transform: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


#: ``radiometry.quantity`` values (contract version 2, docs/model-contract.md).
RADIOMETRY_QUANTITIES = ("reflectance", "backscatter", "elevation", "other")


@dataclass(frozen=True)
class Radiometry:
    """What the model's inputs were in training (optional ``radiometry`` field, version 2).

    Attributes:
        product: e.g. ``"Sentinel-2 L1C"``.
        quantity: one of :data:`RADIOMETRY_QUANTITIES`.
        units: e.g. ``"reflectance x 10000"``, ``"linear power"``, ``"dB"``, ``"m"``.
        value_range: per band ``(lo, hi)``: the 0.5th and 99.5th percentiles of the training
            inputs in ``units``, after GDAL scale/offset.
    """

    product: str
    quantity: str
    units: str
    value_range: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ModalitySpec:
    """One input modality of the model.

    Attributes:
        name: lower-case identifier, also the ONNX input name (``aerial``, ``dem``, ``s2``,
            ``s1_asc``, ``s1_desc``...).
        bands: band names in the order the model expects them.
        gsd_m: pixel size of the model grid for this modality, metres.
        tile_px: tile height = width on this modality's grid, pixels.
        patch_px: tokenisation patch size, pixels (``tile_px`` is a multiple of it).
        min_dates, max_dates: accepted number of dates (1, 1 for a single-date modality).
        scaling: input normalisation applied by the engine before the model.
        nodata_fill: value (after scaling) written into nodata pixels.
        group: fusion group (modalities of one group share an encoder).
        radiometry: what the inputs were in training (None: not recorded, e.g. version 1).
    """

    name: str
    bands: tuple[str, ...]
    gsd_m: float
    tile_px: int
    patch_px: int
    min_dates: int
    max_dates: int
    scaling: Scaling
    nodata_fill: float = 0.0
    group: str = ""
    radiometry: Radiometry | None = None

    @property
    def tile_ground_m(self) -> float:
        """Tile side on the ground, metres."""
        return self.tile_px * self.gsd_m

    @property
    def is_time_series(self) -> bool:
        return self.max_dates > 1

    @property
    def input_names(self) -> tuple[str, str, str]:
        """ONNX input names: pixels, dates, date mask."""
        return self.name, f"{self.name}_dates", f"{self.name}_mask"


@dataclass(frozen=True)
class ClassSpec:
    """One output class: ``id`` is the value written in the land-cover raster."""

    id: int
    name: str
    color: str


@dataclass(frozen=True)
class ModelMetadata:
    """The validated ``maestro`` metadata of a model (schema version 1)."""

    schema_version: int
    name: str
    task: str
    reference_modality: str
    modalities: tuple[ModalitySpec, ...]
    classes: tuple[ClassSpec, ...]
    multilabel: bool
    embedding_dim: int | None
    provenance: Mapping[str, Any]
    description: str = ""
    version: str = ""

    def modality(self, name: str) -> ModalitySpec:
        for spec in self.modalities:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def reference(self) -> ModalitySpec:
        return self.modality(self.reference_modality)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    @property
    def output_name(self) -> str:
        return OUTPUT_NAMES[self.task]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (what goes into ``metadata_props['maestro']``)."""
        doc = asdict(self)
        doc["modalities"] = []
        for m in self.modalities:
            item = asdict(m)
            item["nodata"] = {"fill_value": item.pop("nodata_fill")}
            if item.get("radiometry") is None:
                item.pop("radiometry", None)
            doc["modalities"].append(item)
        doc["classes"] = [asdict(c) for c in self.classes]
        doc["provenance"] = dict(self.provenance)
        return json.loads(json.dumps(doc))  # tuples -> lists: the JSON form

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)


# ----------------------------------------------------------------------------- parsing
def _require(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(doc, Mapping):
        raise ContractError(f"model metadata: '{where}' must be an object")
    if key not in doc:
        raise ContractError(f"model metadata: missing field '{where}.{key}'" if where
                            else f"model metadata: missing field '{key}'")
    return doc[key]


def _typed(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    # bool is an int in Python; refuse it where a number is meant.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ContractError(f"model metadata: field '{where}' has the wrong type (bool)")
    if not isinstance(value, types):
        raise ContractError(
            f"model metadata: field '{where}' has the wrong type ({type(value).__name__})")
    return value


def _positive(value: Any, where: str, integer: bool = False) -> Any:
    _typed(value, int if integer else (int, float), where)
    if value <= 0:
        raise ContractError(f"model metadata: field '{where}' must be > 0 (got {value})")
    return value


def _parse_scaling(doc: Any, nbands: int, where: str) -> Scaling:
    transform = _typed(_require(doc, "transform", where), str, f"{where}.transform")
    if transform not in SCALING_TRANSFORMS:
        raise ContractError(f"model metadata: field '{where}.transform' must be one of "
                            f"{SCALING_TRANSFORMS} (got '{transform}')")
    values = {}
    for key in ("mean", "std"):
        seq = _typed(_require(doc, key, where), list, f"{where}.{key}")
        if len(seq) != nbands:
            raise ContractError(f"model metadata: field '{where}.{key}' has {len(seq)} values "
                                f"for {nbands} bands")
        for i, v in enumerate(seq):
            _typed(v, (int, float), f"{where}.{key}[{i}]")
        values[key] = tuple(float(v) for v in seq)
    for i, v in enumerate(values["std"]):
        if v <= 0:
            raise ContractError(f"model metadata: field '{where}.std[{i}]' must be > 0")
    return Scaling(transform, values["mean"], values["std"])


def _parse_radiometry(doc: Any, nbands: int, where: str) -> Radiometry | None:
    """The optional ``radiometry`` object of a modality (None when absent or null)."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise ContractError(f"model metadata: field '{where}' must be an object")
    product = _typed(_require(doc, "product", where), str, f"{where}.product")
    quantity = _typed(_require(doc, "quantity", where), str, f"{where}.quantity")
    if quantity not in RADIOMETRY_QUANTITIES:
        raise ContractError(f"model metadata: field '{where}.quantity' must be one of "
                            f"{RADIOMETRY_QUANTITIES} (got '{quantity}')")
    units = _typed(_require(doc, "units", where), str, f"{where}.units")
    ranges = _typed(_require(doc, "value_range", where), list, f"{where}.value_range")
    if len(ranges) != nbands:
        raise ContractError(f"model metadata: field '{where}.value_range' has {len(ranges)} "
                            f"pairs for {nbands} bands")
    pairs = []
    for i, pair in enumerate(ranges):
        field = f"{where}.value_range[{i}]"
        _typed(pair, list, field)
        if len(pair) != 2:
            raise ContractError(f"model metadata: field '{field}' must be [lo, hi]")
        lo, hi = (float(_typed(v, (int, float), field)) for v in pair)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ContractError(f"model metadata: field '{field}' must be finite with lo <= hi "
                                f"(got {pair})")
        pairs.append((lo, hi))
    return Radiometry(product, quantity, units, tuple(pairs))


def _parse_modality(doc: Any, index: int) -> ModalitySpec:
    where = f"modalities[{index}]"
    name = _typed(_require(doc, "name", where), str, f"{where}.name")
    if not _NAME_RE.match(name):
        raise ContractError(f"model metadata: field '{where}.name' must be lower case "
                            f"letters, digits and '_' (got '{name}')")
    where = f"modalities[{name}]"
    bands = _typed(_require(doc, "bands", where), list, f"{where}.bands")
    if not bands or not all(isinstance(b, str) and b for b in bands):
        raise ContractError(f"model metadata: field '{where}.bands' must be a non-empty list "
                            "of band names")
    gsd = float(_positive(_require(doc, "gsd_m", where), f"{where}.gsd_m"))
    tile = _positive(_require(doc, "tile_px", where), f"{where}.tile_px", integer=True)
    patch = _positive(_require(doc, "patch_px", where), f"{where}.patch_px", integer=True)
    if tile % patch:
        raise ContractError(f"model metadata: field '{where}.tile_px' ({tile}) is not a "
                            f"multiple of patch_px ({patch})")
    dmin = _positive(_require(doc, "min_dates", where), f"{where}.min_dates", integer=True)
    dmax = _positive(_require(doc, "max_dates", where), f"{where}.max_dates", integer=True)
    if dmin > dmax:
        raise ContractError(f"model metadata: field '{where}.min_dates' ({dmin}) exceeds "
                            f"max_dates ({dmax})")
    scaling = _parse_scaling(_require(doc, "scaling", where), len(bands), f"{where}.scaling")
    nodata = _require(doc, "nodata", where)
    fill = float(_typed(_require(nodata, "fill_value", f"{where}.nodata"), (int, float),
                        f"{where}.nodata.fill_value"))
    group = doc.get("group") or name
    _typed(group, str, f"{where}.group")
    radiometry = _parse_radiometry(doc.get("radiometry"), len(bands), f"{where}.radiometry")
    return ModalitySpec(name=name, bands=tuple(bands), gsd_m=gsd, tile_px=tile, patch_px=patch,
                        min_dates=dmin, max_dates=dmax, scaling=scaling, nodata_fill=fill,
                        group=group, radiometry=radiometry)


def _parse_classes(doc: Any, task: str) -> tuple[ClassSpec, ...]:
    if task == "embedding":
        if doc in (None, []):
            return ()
    seq = _typed(doc, list, "classes")
    if task != "embedding" and len(seq) < 1:
        raise ContractError("model metadata: field 'classes' must list at least one class")
    classes = []
    for i, item in enumerate(seq):
        where = f"classes[{i}]"
        cid = _typed(_require(item, "id", where), int, f"{where}.id")
        if cid != i:
            raise ContractError(f"model metadata: field '{where}.id' must be {i}: class ids "
                                "are the logit channel indices 0..N-1")
        name = _typed(_require(item, "name", where), str, f"{where}.name")
        color = _typed(_require(item, "color", where), str, f"{where}.color")
        if not _COLOR_RE.match(color):
            raise ContractError(f"model metadata: field '{where}.color' must be '#rrggbb' "
                                f"(got '{color}')")
        classes.append(ClassSpec(cid, name, color))
    return tuple(classes)


def parse_metadata(doc: Mapping[str, Any] | str) -> ModelMetadata:
    """Validate a metadata document (dict or JSON text) and return it typed.

    Raises:
        ContractError: naming the first missing or invalid field.
    """
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise ContractError(f"model metadata: '{METADATA_KEY}' is not valid JSON ({exc})") from exc
    if not isinstance(doc, Mapping):
        raise ContractError("model metadata: the document must be a JSON object")
    version = _typed(_require(doc, "schema_version", ""), int, "schema_version")
    if version != SCHEMA_VERSION:
        raise ContractError(f"model metadata: field 'schema_version' is {version}; this engine "
                            f"reads version {SCHEMA_VERSION}")
    name = _typed(_require(doc, "name", ""), str, "name")
    task = _typed(_require(doc, "task", ""), str, "task")
    if task not in TASKS:
        raise ContractError(f"model metadata: field 'task' must be one of {TASKS} (got '{task}')")
    mods = _typed(_require(doc, "modalities", ""), list, "modalities")
    if not mods:
        raise ContractError("model metadata: field 'modalities' is empty")
    modalities = tuple(_parse_modality(m, i) for i, m in enumerate(mods))
    names = [m.name for m in modalities]
    if len(set(names)) != len(names):
        raise ContractError(f"model metadata: field 'modalities' repeats a name ({names})")
    ref = _typed(_require(doc, "reference_modality", ""), str, "reference_modality")
    if ref not in names:
        raise ContractError(f"model metadata: field 'reference_modality' ('{ref}') is not one of "
                            f"the modalities {names}")
    ground = {m.name: m.tile_ground_m for m in modalities}
    ref_ground = ground[ref]
    for mname, g in ground.items():
        if abs(g - ref_ground) > 1e-6 * ref_ground:
            raise ContractError(
                f"model metadata: field 'modalities[{mname}].tile_px' x gsd_m covers {g} m but the "
                f"reference modality's tile covers {ref_ground} m: tiles must cover the same ground")
    classes = _parse_classes(doc.get("classes"), task)
    multilabel = bool(doc.get("multilabel", False))
    if multilabel and task != "classification":
        raise ContractError("model metadata: field 'multilabel' is only valid for classification")
    emb = doc.get("embedding_dim")
    if task == "embedding":
        emb = _positive(_require(doc, "embedding_dim", ""), "embedding_dim", integer=True)
    provenance = _require(doc, "provenance", "")
    if not isinstance(provenance, Mapping):
        raise ContractError("model metadata: field 'provenance' must be an object")
    for key in ("training_data", "licence"):
        _typed(_require(provenance, key, "provenance"), str, f"provenance.{key}")
    metrics = _require(provenance, "metrics", "provenance")
    if not isinstance(metrics, Mapping):
        raise ContractError("model metadata: field 'provenance.metrics' must be an object")
    return ModelMetadata(schema_version=version, name=name, task=task, reference_modality=ref,
                         modalities=modalities, classes=classes, multilabel=multilabel,
                         embedding_dim=emb, provenance=dict(provenance),
                         description=str(doc.get("description", "")),
                         version=str(doc.get("version", "")))


def build_metadata(*, name: str, task: str, reference_modality: str,
                   modalities: Sequence[Mapping[str, Any]], classes: Sequence[Mapping[str, Any]] = (),
                   provenance: Mapping[str, Any], multilabel: bool = False,
                   embedding_dim: int | None = None, description: str = "",
                   version: str = "") -> ModelMetadata:
    """Build and validate metadata from plain values (the exporter's entry point)."""
    doc = {
        "schema_version": SCHEMA_VERSION, "name": name, "task": task,
        "reference_modality": reference_modality, "modalities": [dict(m) for m in modalities],
        "classes": [dict(c) for c in classes], "multilabel": multilabel,
        "embedding_dim": embedding_dim, "provenance": dict(provenance),
        "description": description, "version": version,
    }
    return parse_metadata(json.loads(json.dumps(doc)))


# ----------------------------------------------------------------------- ONNX side
def expected_inputs(meta: ModelMetadata) -> dict[str, tuple[str, int]]:
    """ONNX input name -> (element type, rank) the contract requires."""
    inputs: dict[str, tuple[str, int]] = {REF_DATE_INPUT: ("tensor(int32)", 2)}
    for m in meta.modalities:
        pixels, dates, mask = m.input_names
        inputs[pixels] = ("tensor(float)", 5)
        inputs[dates] = ("tensor(int32)", 3)
        inputs[mask] = ("tensor(bool)", 2)
    return inputs


def check_graph_io(meta: ModelMetadata, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    """Check ONNX graph inputs/outputs (objects with .name/.type/.shape, as onnxruntime's
    ``NodeArg``) against the metadata.

    Raises:
        ContractError: naming the missing or mistyped tensor.
    """
    have = {i.name: i for i in inputs}
    for name, (etype, rank) in expected_inputs(meta).items():
        if name not in have:
            raise ContractError(f"model graph: missing input '{name}' required by the metadata")
        arg = have[name]
        if arg.type != etype or len(arg.shape) != rank:
            raise ContractError(f"model graph: input '{name}' is {arg.type} rank {len(arg.shape)}, "
                                f"expected {etype} rank {rank}")
    extra = sorted(set(have) - set(expected_inputs(meta)))
    if extra:
        raise ContractError(f"model graph: inputs {extra} are not in the contract")
    out = {o.name: o for o in outputs}
    want = meta.output_name
    if want not in out:
        raise ContractError(f"model graph: missing output '{want}' for task '{meta.task}'")
    rank = {"segmentation": 4, "classification": 2, "embedding": 4}[meta.task]
    if len(out[want].shape) != rank:
        raise ContractError(f"model graph: output '{want}' has rank {len(out[want].shape)}, "
                            f"expected {rank}")


def read_model_metadata(path: str) -> ModelMetadata:
    """Read and validate the metadata of an ONNX file without building a session graph
    beyond what onnxruntime needs to list the model's I/O.

    Raises:
        ModelFileError: the file is missing, unreadable or not ONNX.
        ContractError: the metadata is missing or invalid.
    """
    from .session import inspect_model  # onnxruntime is imported lazily

    meta_map, inputs, outputs = inspect_model(path)
    if METADATA_KEY not in meta_map:
        raise ContractError(f"model metadata: '{path}' has no '{METADATA_KEY}' entry in its ONNX "
                            "metadata_props: it was not exported by MAESTRO's training package")
    meta = parse_metadata(meta_map[METADATA_KEY])
    check_graph_io(meta, inputs, outputs)
    return meta

