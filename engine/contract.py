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
from .modalities import Modality, describe
from .tasks import EMBEDDINGS_OUTPUT, TaskSpec
from .tasks import TASKS as TASK_REGISTRY

#: Key of the JSON document in the ONNX ``metadata_props``.
METADATA_KEY = "maestro"
#: Schema version new exports write (token-level masks, ``embeddings`` output).
SCHEMA_VERSION = 2
#: Schema versions this engine reads (version 1 models are fed date-level masks).
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
#: Task names, from the task registry (engine/tasks).
TASKS = tuple(TASK_REGISTRY)
#: Output tensor name per task (see docs/model-contract.md).
OUTPUT_NAMES = {name: spec.output_name for name, spec in TASK_REGISTRY.items()}
#: Name of the extra input holding the date-encoding origin.
REF_DATE_INPUT = "ref_date"
SCALING_TRANSFORMS = ("none", "log")
RADIOMETRY_QUANTITIES = ("reflectance", "backscatter", "elevation", "other")
#: Bounds on the metadata document (issue 12: a 100,000-deep document must be refused, not
#: crash the reader): characters of its JSON text, nesting depth, values in all.
MAX_METADATA_CHARS = 1_000_000
MAX_METADATA_DEPTH = 32
MAX_METADATA_VALUES = 100_000
#: Upper bounds of integer fields (far beyond any real model; they keep products such as
#: tile_px x gsd_m finite and arrays allocatable).
MAX_TILE_PX = 65_536
MAX_DATES = 10_000
MAX_BANDS = 10_000
MAX_EMBEDDING_DIM = 1_000_000
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


@dataclass(frozen=True)
class Radiometry:
    """What the model was trained on, for one modality (optional metadata field
    ``radiometry``; docs/model-contract.md).

    Attributes:
        product: e.g. ``"Sentinel-2 L1C"``.
        quantity: one of :data:`RADIOMETRY_QUANTITIES`.
        units: e.g. ``"reflectance x 10000"``, ``"linear power"``, ``"dB"``, ``"m"``.
        value_range: per band, (0.5th, 99.5th) percentile of the training inputs in those
            units, after GDAL scale/offset.
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
        radiometry: what the model was trained on (:class:`Radiometry`), or None.
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
        """ONNX input names: pixels, dates, mask."""
        return self.name, f"{self.name}_dates", f"{self.name}_mask"

    @property
    def grid(self) -> int:
        """Token grid side h = w = tile_px / patch_px."""
        return self.tile_px // self.patch_px

    @property
    def tokens(self) -> int:
        """Tokens per date (grid ** 2): the last axis of a version-2 ``<m>_mask``."""
        return self.grid ** 2

    @property
    def description(self) -> Modality | None:
        """What this modality is (engine.modalities: title, native resolution, MAESTRO's
        scaling, default radiometry); None for a modality MAESTRO's datasets lack."""
        return describe(self.name)


@dataclass(frozen=True)
class ClassSpec:
    """One output class: ``id`` is the value written in the land-cover raster."""

    id: int
    name: str
    color: str


@dataclass(frozen=True)
class ModelMetadata:
    """The validated ``maestro`` metadata of a model (schema version 1 or 2).

    ``embedding_dim``: the ``embeddings`` output's channels; set for every version-2 model
    written by the exporter (and for every embedding model). ``quantisation``: the record an
    int8 variant carries (engine/quantize.py, docs/model-contract.md), None for float32."""

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
    quantisation: Mapping[str, Any] | None = None

    @property
    def precision(self) -> str:
        """``float32``, or ``int8 (<method>)`` for a quantised variant."""
        if not self.quantisation:
            return "float32"
        return f"int8 ({self.quantisation.get('method', '?')})"

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
    def task_spec(self) -> TaskSpec:
        """The task's registered spec (engine/tasks)."""
        return TASK_REGISTRY[self.task]

    @property
    def output_name(self) -> str:
        return self.task_spec.output_name

    @property
    def output_names(self) -> tuple[str, ...]:
        """Every graph output: the task's, plus ``embeddings`` for a version-2
        segmentation or classification model."""
        if self.schema_version >= 2 and self.output_name != EMBEDDINGS_OUTPUT:
            return (self.output_name, EMBEDDINGS_OUTPUT)
        return (self.output_name,)

    @property
    def token_masks(self) -> bool:
        """True when ``<m>_mask`` is per token [batch, dates, tokens] (version 2); False for
        the version-1 date mask [batch, dates]."""
        return self.schema_version >= 2

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (what goes into ``metadata_props['maestro']``)."""
        doc = asdict(self)
        doc["modalities"] = []
        for m in self.modalities:
            item = asdict(m)
            item["nodata"] = {"fill_value": item.pop("nodata_fill")}
            if item["radiometry"] is None:
                del item["radiometry"]
            doc["modalities"].append(item)
        doc["classes"] = [asdict(c) for c in self.classes]
        doc["provenance"] = dict(self.provenance)
        return json.loads(json.dumps(doc))  # tuples -> lists: the JSON form

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)


# ----------------------------------------------------------------------------- parsing
def _fail(message: str) -> ContractError:
    return ContractError(f"model metadata: {message}")


def _require(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(doc, Mapping):
        raise _fail(f"'{where}' must be an object")
    if key not in doc:
        raise _fail(f"missing field '{where}.{key}'" if where else f"missing field '{key}'")
    return doc[key]


def _typed(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    # bool is an int in Python; refuse it where a number is meant.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _fail(f"field '{where}' has the wrong type (bool)")
    if not isinstance(value, types):
        raise _fail(f"field '{where}' has the wrong type ({type(value).__name__})")
    return value


def _number(value: Any, where: str) -> float:
    """A finite int or float as float (NaN, Inf and ints beyond float refused)."""
    _typed(value, (int, float), where)
    try:
        out = float(value)
    except OverflowError:
        raise _fail(f"field '{where}' is too large ({str(value)[:20]}...)") from None
    if not math.isfinite(out):
        raise _fail(f"field '{where}' must be a finite number (got {value})")
    return out


def _positive(value: Any, where: str, integer: bool = False, maximum: int | None = None) -> Any:
    if integer:
        _typed(value, int, where)
        if value <= 0:
            raise _fail(f"field '{where}' must be > 0 (got {str(value)[:20]})")
        if maximum is not None and value > maximum:
            raise _fail(f"field '{where}' must be <= {maximum} (got {str(value)[:20]})")
        return value
    number = _number(value, where)
    if number <= 0:
        raise _fail(f"field '{where}' must be > 0 (got {value})")
    return number


def _string(doc: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    """An optional (``default`` given) or required string field."""
    path = f"{where}.{key}" if where else key
    if default is not None and doc.get(key) is None:
        return default
    return _typed(_require(doc, key, where), str, path)


def _check_document(doc: Any, finite: bool = False) -> None:
    """Bound the document (depth, number of values) and, with ``finite``, refuse
    non-finite numbers anywhere in it, naming the path. Iterative: a deep document cannot
    exhaust the stack."""
    stack = [(doc, "", 0)]
    seen = 0
    while stack:
        value, path, depth = stack.pop()
        seen += 1
        if seen > MAX_METADATA_VALUES:
            raise _fail(f"the document holds more than {MAX_METADATA_VALUES} values")
        if depth > MAX_METADATA_DEPTH:
            raise _fail(f"field '{path}' is nested deeper than {MAX_METADATA_DEPTH} levels")
        if finite and isinstance(value, float) and not math.isfinite(value):
            raise _fail(f"field '{path}' must be a finite number (got {value})")
        if isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):    # document order
                if not isinstance(key, str):
                    raise _fail(f"field '{path}' has a key that is not a string")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, (list, tuple)):
            for i in range(len(value) - 1, -1, -1):
                stack.append((value[i], f"{path}[{i}]", depth + 1))
        elif not (value is None or isinstance(value, (str, int, float))):
            raise _fail(f"field '{path}' is not a JSON value ({type(value).__name__})")


def _parse_scaling(doc: Any, nbands: int, where: str) -> Scaling:
    transform = _typed(_require(doc, "transform", where), str, f"{where}.transform")
    if transform not in SCALING_TRANSFORMS:
        raise _fail(f"field '{where}.transform' must be one of {SCALING_TRANSFORMS} "
                    f"(got '{transform[:40]}')")
    values = {}
    for key in ("mean", "std"):
        seq = _typed(_require(doc, key, where), list, f"{where}.{key}")
        if len(seq) != nbands:
            raise _fail(f"field '{where}.{key}' has {len(seq)} values for {nbands} bands")
        values[key] = tuple(_number(v, f"{where}.{key}[{i}]") for i, v in enumerate(seq))
    for i, v in enumerate(values["std"]):
        if v <= 0:
            raise _fail(f"field '{where}.std[{i}]' must be > 0")
    return Scaling(transform, values["mean"], values["std"])


def _parse_radiometry(doc: Any, nbands: int, where: str) -> Radiometry | None:
    """The optional per-modality ``radiometry`` object (None when absent or null).

    Raises:
        ContractError: a missing or invalid sub-field, named.
    """
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise _fail(f"field '{where}' must be an object")
    product = _string(doc, "product", where)
    quantity = _string(doc, "quantity", where)
    if quantity not in RADIOMETRY_QUANTITIES:
        raise _fail(f"field '{where}.quantity' must be one of {RADIOMETRY_QUANTITIES} "
                    f"(got '{quantity[:40]}')")
    units = _string(doc, "units", where)
    seq = _typed(_require(doc, "value_range", where), list, f"{where}.value_range")
    if len(seq) != nbands:
        raise _fail(f"field '{where}.value_range' has {len(seq)} ranges for {nbands} bands")
    ranges = []
    for i, pair in enumerate(seq):
        at = f"{where}.value_range[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(f"field '{at}' must be a pair [low, high]")
        lo, hi = _number(pair[0], f"{at}[0]"), _number(pair[1], f"{at}[1]")
        if lo > hi:
            raise _fail(f"field '{at}' has low {lo} above high {hi}")
        ranges.append((lo, hi))
    return Radiometry(product, quantity, units, tuple(ranges))


def _parse_modality(doc: Any, index: int) -> ModalitySpec:
    where = f"modalities[{index}]"
    name = _typed(_require(doc, "name", where), str, f"{where}.name")
    if not _NAME_RE.match(name) or len(name) > 64:
        raise _fail(f"field '{where}.name' must be lower case letters, digits and '_', at "
                    f"most 64 characters (got '{name[:40]}')")
    where = f"modalities[{name}]"
    bands = _typed(_require(doc, "bands", where), list, f"{where}.bands")
    if not bands or len(bands) > MAX_BANDS or not all(isinstance(b, str) and b for b in bands):
        raise _fail(f"field '{where}.bands' must be a non-empty list of band names (at most "
                    f"{MAX_BANDS})")
    gsd = _positive(_require(doc, "gsd_m", where), f"{where}.gsd_m")
    tile = _positive(_require(doc, "tile_px", where), f"{where}.tile_px", True, MAX_TILE_PX)
    patch = _positive(_require(doc, "patch_px", where), f"{where}.patch_px", True, MAX_TILE_PX)
    if tile % patch:
        raise _fail(f"field '{where}.tile_px' ({tile}) is not a multiple of patch_px ({patch})")
    dmin = _positive(_require(doc, "min_dates", where), f"{where}.min_dates", True, MAX_DATES)
    dmax = _positive(_require(doc, "max_dates", where), f"{where}.max_dates", True, MAX_DATES)
    if dmin > dmax:
        raise _fail(f"field '{where}.min_dates' ({dmin}) exceeds max_dates ({dmax})")
    scaling = _parse_scaling(_require(doc, "scaling", where), len(bands), f"{where}.scaling")
    nodata = _require(doc, "nodata", where)
    fill = _number(_require(nodata, "fill_value", f"{where}.nodata"),
                   f"{where}.nodata.fill_value")
    group = doc.get("group") or name
    _typed(group, str, f"{where}.group")
    radiometry = _parse_radiometry(doc.get("radiometry"), len(bands), f"{where}.radiometry")
    return ModalitySpec(name=name, bands=tuple(bands), gsd_m=gsd, tile_px=tile, patch_px=patch,
                        min_dates=dmin, max_dates=dmax, scaling=scaling, nodata_fill=fill,
                        group=group, radiometry=radiometry)


def _parse_classes(doc: Any, task: str) -> tuple[ClassSpec, ...]:
    has_classes = TASK_REGISTRY[task].has_classes
    if not has_classes and (doc is None or doc == []):
        return ()
    seq = _typed(doc, list, "classes")
    if has_classes and len(seq) < 1:
        raise _fail("field 'classes' must list at least one class")
    classes = []
    for i, item in enumerate(seq):
        where = f"classes[{i}]"
        cid = _typed(_require(item, "id", where), int, f"{where}.id")
        if cid != i:
            raise _fail(f"field '{where}.id' must be {i}: class ids are the logit channel "
                        "indices 0..N-1")
        name = _typed(_require(item, "name", where), str, f"{where}.name")
        color = _typed(_require(item, "color", where), str, f"{where}.color")
        if not _COLOR_RE.match(color):
            raise _fail(f"field '{where}.color' must be '#rrggbb' (got '{color[:20]}')")
        classes.append(ClassSpec(cid, name, color))
    return tuple(classes)


def _load_json(text: str | bytes) -> Any:
    if len(text) > MAX_METADATA_CHARS:
        raise _fail(f"'{METADATA_KEY}' is {len(text)} characters long; at most "
                    f"{MAX_METADATA_CHARS} are read")
    try:
        return json.loads(text)
    except RecursionError:
        raise _fail(f"'{METADATA_KEY}' is nested too deeply") from None
    except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError
        raise _fail(f"'{METADATA_KEY}' is not valid JSON ({exc})") from None


def parse_metadata(doc: Mapping[str, Any] | str) -> ModelMetadata:
    """Validate a metadata document (dict or JSON text) and return it typed.

    Accepts schema versions :data:`SUPPORTED_SCHEMA_VERSIONS`. Every number must be finite,
    the document at most :data:`MAX_METADATA_CHARS` characters (text),
    :data:`MAX_METADATA_DEPTH` levels deep and :data:`MAX_METADATA_VALUES` values.

    Raises:
        ContractError: naming the first missing or invalid field (nothing else, whatever
            the document: tests/engine/test_contract.py checks random documents).
    """
    if isinstance(doc, (str, bytes)):
        doc = _load_json(doc)
    if not isinstance(doc, Mapping):
        raise _fail("the document must be a JSON object")
    _check_document(doc)
    version = _typed(_require(doc, "schema_version", ""), int, "schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise _fail(f"field 'schema_version' is {str(version)[:20]}; this engine reads "
                    f"versions {list(SUPPORTED_SCHEMA_VERSIONS)}")
    name = _typed(_require(doc, "name", ""), str, "name")
    task = _typed(_require(doc, "task", ""), str, "task")
    if task not in TASK_REGISTRY:
        raise _fail(f"field 'task' must be one of {tuple(TASK_REGISTRY)} (got '{task[:40]}')")
    mods = _typed(_require(doc, "modalities", ""), list, "modalities")
    if not mods:
        raise _fail("field 'modalities' is empty")
    modalities = tuple(_parse_modality(m, i) for i, m in enumerate(mods))
    names = [m.name for m in modalities]
    if len(set(names)) != len(names):
        raise _fail(f"field 'modalities' repeats a name ({names})")
    ref = _typed(_require(doc, "reference_modality", ""), str, "reference_modality")
    if ref not in names:
        raise _fail(f"field 'reference_modality' ('{ref[:40]}') is not one of the modalities "
                    f"{names}")
    ground = {m.name: m.tile_ground_m for m in modalities}
    ref_ground = ground[ref]
    for mname, g in ground.items():
        if not math.isfinite(g) or abs(g - ref_ground) > 1e-6 * ref_ground:
            raise _fail(f"field 'modalities[{mname}].tile_px' x gsd_m covers {g} m but the "
                        f"reference modality's tile covers {ref_ground} m: tiles must cover "
                        "the same ground")
    classes = _parse_classes(doc.get("classes"), task)
    multilabel = doc.get("multilabel")
    multilabel = False if multilabel is None else _typed(multilabel, bool, "multilabel")
    spec = TASK_REGISTRY[task]
    if multilabel and not spec.multilabel:
        raise _fail("field 'multilabel' is only valid for "
                    + ", ".join(t.name for t in TASK_REGISTRY.values() if t.multilabel))
    emb = doc.get("embedding_dim")
    if spec.needs_embedding_dim or emb is not None:
        emb = _positive(_require(doc, "embedding_dim", ""), "embedding_dim", True,
                        MAX_EMBEDDING_DIM)
    provenance = _require(doc, "provenance", "")
    if not isinstance(provenance, Mapping):
        raise _fail("field 'provenance' must be an object")
    for key in ("training_data", "licence"):
        _typed(_require(provenance, key, "provenance"), str, f"provenance.{key}")
    metrics = _require(provenance, "metrics", "provenance")
    if not isinstance(metrics, Mapping):
        raise _fail("field 'provenance.metrics' must be an object")
    # Every number finite, also in fields the engine does not read (provenance...): the
    # fields above already named theirs.
    _check_document(doc, finite=True)
    return ModelMetadata(schema_version=version, name=name, task=task, reference_modality=ref,
                         modalities=modalities, classes=classes, multilabel=multilabel,
                         embedding_dim=emb, provenance=dict(provenance),
                         description=_string(doc, "description", "", ""),
                         version=_string(doc, "version", "", ""),
                         quantisation=(dict(doc["quantisation"]) if isinstance(
                             doc.get("quantisation"), Mapping) else None))


def build_metadata(*, name: str, task: str, reference_modality: str,
                   modalities: Sequence[Mapping[str, Any]], classes: Sequence[Mapping[str, Any]] = (),
                   provenance: Mapping[str, Any], multilabel: bool = False,
                   embedding_dim: int | None = None, description: str = "",
                   version: str = "", schema_version: int = SCHEMA_VERSION) -> ModelMetadata:
    """Build and validate metadata from plain values (the exporter's entry point).

    ``embedding_dim`` may stay None for a segmentation/classification model: the exporter
    sets it from the network (every version-2 model has the ``embeddings`` output)."""
    doc = {
        "schema_version": schema_version, "name": name, "task": task,
        "reference_modality": reference_modality, "modalities": [dict(m) for m in modalities],
        "classes": [dict(c) for c in classes], "multilabel": multilabel,
        "embedding_dim": embedding_dim, "provenance": dict(provenance),
        "description": description, "version": version,
    }
    return parse_metadata(json.loads(json.dumps(doc)))


# ----------------------------------------------------------------------- ONNX side
def expected_inputs(meta: ModelMetadata) -> dict[str, tuple[str, tuple[int | None, ...]]]:
    """ONNX input name -> (element type, shape) the contract requires; None in a shape is a
    dynamic axis (batch, dates), an int a size the graph must have or leave dynamic.
    The mask is [batch, dates, tokens] in version 2, [batch, dates] in version 1."""
    inputs: dict[str, tuple[str, tuple[int | None, ...]]] = {
        REF_DATE_INPUT: ("tensor(int32)", (None, 3))}
    for m in meta.modalities:
        pixels, dates, mask = m.input_names
        inputs[pixels] = ("tensor(float)", (None, None, len(m.bands), m.tile_px, m.tile_px))
        inputs[dates] = ("tensor(int32)", (None, None, 3))
        inputs[mask] = ("tensor(bool)",
                        (None, None, m.tokens) if meta.token_masks else (None, None))
    return inputs


def expected_outputs(meta: ModelMetadata) -> dict[str, tuple[int | None, ...]]:
    """ONNX output name -> shape (None = dynamic or not fixed by the metadata)."""
    return {name: TASK_REGISTRY[name_task].output_shape(meta)
            for name, name_task in _output_tasks(meta).items()}


def _output_tasks(meta: ModelMetadata) -> dict[str, str]:
    """Graph output name -> the registered task whose spec gives its shape."""
    return {name: meta.task if name == meta.output_name else
            next(t.name for t in TASK_REGISTRY.values() if t.output_name == name)
            for name in meta.output_names}


def _dims_field(name: str, axis: int, meta: ModelMetadata) -> str:
    """The metadata field a graph dimension is checked against (for error messages)."""
    output_tasks = _output_tasks(meta)
    if name in output_tasks:
        if axis == 1:
            return "classes" if TASK_REGISTRY[output_tasks[name]].has_classes else "embedding_dim"
        return f"modalities[{meta.reference_modality}].tile_px"
    for m in meta.modalities:
        pixels, dates, mask = m.input_names
        if name == pixels:
            return f"modalities[{m.name}].bands" if axis == 2 else f"modalities[{m.name}].tile_px"
        if name == mask:
            return f"modalities[{m.name}].tile_px / patch_px"
    return "schema_version"


def _check_shape(kind: str, name: str, have: Sequence[Any], want: Sequence[int | None],
                 meta: ModelMetadata) -> None:
    if len(have) != len(want):
        raise ContractError(f"model graph: {kind} '{name}' has rank {len(have)}, expected "
                            f"{len(want)}")
    for axis, (got, need) in enumerate(zip(have, want)):
        if need is not None and isinstance(got, int) and not isinstance(got, bool) \
                and got != need:
            raise ContractError(
                f"model graph: {kind} '{name}' has size {got} on axis {axis} but the metadata "
                f"field '{_dims_field(name, axis, meta)}' implies {need}")


def check_graph_io(meta: ModelMetadata, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    """Check ONNX graph inputs/outputs (objects with .name/.type/.shape, as onnxruntime's
    ``NodeArg``) against the metadata: names, element types, ranks, and every fixed size
    (bands, tile_px, tokens, classes, embedding_dim). A version-2 segmentation or
    classification model must also give ``embeddings`` and set ``embedding_dim``.

    Raises:
        ContractError: naming the missing or mistyped tensor and the metadata field.
    """
    have = {i.name: i for i in inputs}
    want_in = expected_inputs(meta)
    for name, (etype, shape) in want_in.items():
        if name not in have:
            raise ContractError(f"model graph: missing input '{name}' required by the metadata")
        arg = have[name]
        if arg.type != etype:
            raise ContractError(f"model graph: input '{name}' is {arg.type}, expected {etype}")
        _check_shape("input", name, list(arg.shape or ()), shape, meta)
    extra = sorted(set(have) - set(want_in))
    if extra:
        raise ContractError(f"model graph: inputs {extra} are not in the contract")
    if meta.schema_version >= 2 and meta.embedding_dim is None:
        raise ContractError("model metadata: missing field 'embedding_dim' (every version-2 "
                            "model gives an 'embeddings' output)")
    out = {o.name: o for o in outputs}
    for name, shape in expected_outputs(meta).items():
        if name not in out:
            raise ContractError(f"model graph: missing output '{name}' for task '{meta.task}' "
                                f"(schema version {meta.schema_version})")
        etype = getattr(out[name], "type", "tensor(float)")
        if etype != "tensor(float)":
            raise ContractError(f"model graph: output '{name}' is {etype}, expected "
                                "tensor(float)")
        _check_shape("output", name, list(out[name].shape or ()), shape, meta)


def read_model_metadata(path: str) -> ModelMetadata:
    """Read and validate the metadata of an ONNX file and check it against the graph's
    inputs and outputs (:func:`check_graph_io`).

    Raises:
        ModelFileError: the file is missing, unreadable or not ONNX.
        ContractError: the metadata is missing or invalid, or disagrees with the graph.
    """
    from .session import inspect_model  # onnxruntime is imported lazily

    meta_map, inputs, outputs = inspect_model(path)
    if METADATA_KEY not in meta_map:
        raise ContractError(f"model metadata: '{path}' has no '{METADATA_KEY}' entry in its ONNX "
                            "metadata_props: it was not exported by MAESTRO's training package")
    meta = parse_metadata(meta_map[METADATA_KEY])
    check_graph_io(meta, inputs, outputs)
    return meta
