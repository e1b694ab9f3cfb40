"""The contract as the engine reads it: valid documents parse, each invalid field is named,
the metadata is checked against the graph (fixed sizes, outputs), numbers are finite, the
document is bounded; random documents never raise anything but ContractError
(property-based, hypothesis)."""
import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.contract import (METADATA_KEY, SCHEMA_VERSION, build_metadata, expected_inputs,
                             parse_metadata, read_model_metadata)
from engine.errors import ContractError, ModelFileError
from tests.tiny_model import tiny_metadata


def valid_doc():
    return tiny_metadata("segmentation").to_dict()


def test_roundtrip_json():
    meta = tiny_metadata("segmentation")
    again = parse_metadata(meta.to_json())
    assert again == meta
    assert again.reference.name == "s2"
    assert again.modality("dem").tile_ground_m == again.reference.tile_ground_m == 160.0


@pytest.mark.parametrize("path,field", [
    (("schema_version",), "schema_version"),
    (("task",), "task"),
    (("reference_modality",), "reference_modality"),
    (("modalities",), "modalities"),
    (("modalities", 0, "bands"), "modalities[s2].bands"),
    (("modalities", 0, "gsd_m"), "modalities[s2].gsd_m"),
    (("modalities", 1, "tile_px"), "modalities[dem].tile_px"),
    (("modalities", 0, "scaling"), "modalities[s2].scaling"),
    (("modalities", 0, "nodata"), "modalities[s2].nodata"),
    (("classes", 1, "color"), "classes[1].color"),
    (("provenance",), "provenance"),
    (("provenance", "licence"), "provenance.licence"),
])
def test_missing_field_is_named(path, field):
    doc = valid_doc()
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(ContractError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_metadata(doc)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema_version"),
    (lambda d: d.update(schema_version=0), "schema_version"),
    (lambda d: d["modalities"][0]["scaling"].update(std=[math.nan] * 10), r"std\[0\]"),
    (lambda d: d["modalities"][0]["scaling"].update(mean=[math.inf] * 10), r"mean\[0\]"),
    (lambda d: d["modalities"][0].update(gsd_m=math.nan), r"modalities\[s2\].gsd_m"),
    (lambda d: d["modalities"][0].update(gsd_m=10 ** 400), r"modalities\[s2\].gsd_m"),
    (lambda d: d["modalities"][1]["nodata"].update(fill_value=-math.inf), "fill_value"),
    (lambda d: d["modalities"][0].update(tile_px=2 ** 40), r"tile_px"),
    (lambda d: d["provenance"]["metrics"].update(oa=math.nan), r"provenance.metrics.oa"),
    (lambda d: d.update(multilabel="yes"), "multilabel"),
    (lambda d: d.update(embedding_dim=0), "embedding_dim"),
    (lambda d: d["modalities"][0].update(radiometry={"product": "S2", "quantity": "dn",
                                                     "units": "", "value_range": []}),
     "radiometry.quantity"),
    (lambda d: d["modalities"][1].update(radiometry={
        "product": "DEM", "quantity": "elevation", "units": "m",
        "value_range": [[900.0, 100.0]]}), r"radiometry.value_range\[0\]"),
    (lambda d: d["modalities"][1].update(radiometry={
        "product": "DEM", "quantity": "elevation", "units": "m",
        "value_range": [[0.0, math.nan]]}), r"value_range\[0\]\[1\]"),
    (lambda d: d.update(task="detection"), "task"),
    (lambda d: d.update(reference_modality="aerial"), "reference_modality"),
    (lambda d: d["modalities"][0].update(name="S2"), "lower case"),
    (lambda d: d["modalities"][1].update(tile_px=4, patch_px=2), "same ground"),
    (lambda d: d["modalities"][0].update(tile_px=18), "multiple of patch_px"),
    (lambda d: d["modalities"][0].update(min_dates=7), "min_dates"),
    (lambda d: d["modalities"][0]["scaling"].update(std=[1.0] * 3), "3 values for 10 bands"),
    (lambda d: d["modalities"][0]["scaling"].update(std=[0.0] * 10), r"std\[0\]"),
    (lambda d: d["modalities"][0]["scaling"].update(transform="sqrt"), "transform"),
    (lambda d: d["classes"][0].update(id=5), r"classes\[0\].id"),
    (lambda d: d["modalities"].append(copy.deepcopy(d["modalities"][0])), "repeats a name"),
    (lambda d: d["modalities"][0].update(gsd_m=True), "wrong type"),
])
def test_invalid_field_is_named(mutate, needle):
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(ContractError, match=needle):
        parse_metadata(doc)


def test_not_json():
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_metadata("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_metadata(b"\xff\xfe{")


def test_deep_or_huge_documents_are_refused_not_crashing():
    """Issue 12: metadata JSON nested 100,000 deep gave a RecursionError."""
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(ContractError, match="nested too deeply|characters long"):
        parse_metadata(deep)
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(ContractError):
        parse_metadata(deep)
    doc = valid_doc()
    nested = {}
    cursor = nested
    for _ in range(100_000):               # a dict handed over directly: no JSON parser
        cursor["x"] = {}
        cursor = cursor["x"]
    doc["provenance"]["deep"] = nested
    with pytest.raises(ContractError, match="nested deeper"):
        parse_metadata(doc)
    doc = valid_doc()
    doc["provenance"]["big"] = list(range(200_000))
    with pytest.raises(ContractError, match="more than"):
        parse_metadata(doc)
    with pytest.raises(ContractError, match="characters long"):
        parse_metadata(json.dumps({"schema_version": 2, "pad": "x" * 2_000_000}))


def test_radiometry_round_trip():
    doc = valid_doc()
    doc["modalities"][1]["radiometry"] = {"product": "Copernicus DEM", "quantity": "elevation",
                                          "units": "m", "value_range": [[-5, 2500.5]]}
    meta = parse_metadata(doc)
    rad = meta.modality("dem").radiometry
    assert rad.value_range == ((-5.0, 2500.5),) and rad.quantity == "elevation"
    assert meta.modality("s2").radiometry is None
    again = meta.to_dict()
    assert again["modalities"][1]["radiometry"]["value_range"] == [[-5.0, 2500.5]]
    assert "radiometry" not in again["modalities"][0]
    assert parse_metadata(again) == meta


def test_version_1_documents_are_still_read():
    doc = valid_doc()
    doc["schema_version"] = 1
    doc["embedding_dim"] = None
    meta = parse_metadata(doc)
    assert meta.schema_version == 1 and not meta.token_masks
    assert meta.output_names == ("logits",)
    assert expected_inputs(meta)["s2_mask"] == ("tensor(bool)", (None, None))
    v2 = parse_metadata(valid_doc())
    assert v2.output_names == ("logits", "embeddings")
    assert expected_inputs(v2)["s2_mask"] == ("tensor(bool)", (None, None, 16))
    assert expected_inputs(v2)["dem_mask"] == ("tensor(bool)", (None, None, 16))


def test_embedding_needs_dim():
    doc = tiny_metadata("embedding").to_dict()
    doc.pop("embedding_dim")
    with pytest.raises(ContractError, match="embedding_dim"):
        parse_metadata(doc)


def test_expected_inputs_cover_every_modality():
    names = set(expected_inputs(tiny_metadata()))
    assert names == {"s2", "s2_dates", "s2_mask", "dem", "dem_dates", "dem_mask", "ref_date"}


def test_read_exported_model(tiny_models):
    meta = read_model_metadata(tiny_models["segmentation"])
    assert meta.task == "segmentation" and meta.classes[2].name == "artificial"
    assert meta.provenance["code_version"]
    assert meta.schema_version == 2 and meta.embedding_dim == 16


def _edited(tmp_path, tiny_models, task, edit, name="edited.onnx"):
    """A copy of a tiny exported model whose metadata document went through ``edit``."""
    import onnx

    proto = onnx.load(tiny_models[task])
    doc = json.loads(proto.metadata_props[0].value)
    edit(doc)
    proto.metadata_props[0].value = json.dumps(doc)
    path = tmp_path / name
    onnx.save(proto, str(path))
    return str(path)


def _tile32(doc):
    doc["modalities"][0]["tile_px"] = 32
    doc["modalities"][1]["tile_px"] = 16


@pytest.mark.parametrize("task,edit,needle", [
    # Issue 12: metadata tile_px disagreeing with the graph's fixed spatial size.
    ("segmentation", _tile32, r"input 's2' has size 16 on axis 3 .*modalities\[s2\].tile_px"),
    ("segmentation", lambda d: d["modalities"][0].update(patch_px=2),
     r"input 's2_mask' has size 16 on axis 2 .*patch_px"),
    ("segmentation", lambda d: d["modalities"][0].update(
        bands=d["modalities"][0]["bands"][:9],
        scaling={"transform": "none", "mean": [0] * 9, "std": [1] * 9}),
     r"input 's2' has size 10 on axis 2 .*modalities\[s2\].bands"),
    # Issue 12: 3 classes in the graph, 2 in the metadata (was a numpy broadcast error).
    ("segmentation", lambda d: d.update(classes=d["classes"][:2]),
     r"output 'logits' has size 3 on axis 1 .*'classes'"),
    ("classification", lambda d: d.update(classes=d["classes"] + [
        {"id": 3, "name": "water", "color": "#0000ff"}]),
     r"output 'logits' has size 3 on axis 1 .*'classes'"),
    ("embedding", lambda d: d.update(embedding_dim=32),
     r"output 'embeddings' has size 16 on axis 1 .*embedding_dim"),
    ("segmentation", lambda d: d.update(embedding_dim=8),
     r"output 'embeddings' has size 16 on axis 1 .*embedding_dim"),
    ("segmentation", lambda d: d.update(embedding_dim=None),
     r"missing field 'embedding_dim'"),
    # A version-2 graph (token masks) labelled version 1.
    ("segmentation", lambda d: d.update(schema_version=1),
     r"input 's2_mask' has rank 3, expected 2"),
])
def test_metadata_is_checked_against_the_graph(tmp_path, tiny_models, task, edit, needle):
    path = _edited(tmp_path, tiny_models, task, edit)
    with pytest.raises(ContractError, match=needle):
        read_model_metadata(path)


def test_nan_in_the_file_metadata_is_refused_naming_the_field(tmp_path, tiny_models):
    """Issue 12: std or gsd_m = NaN gave an all-class-0 map with exit status 0."""
    import onnx

    for field, needle in (("std", r"modalities\[s2\].scaling.std\[0\]"),
                          ("gsd_m", r"modalities\[s2\].gsd_m")):
        proto = onnx.load(tiny_models["segmentation"])
        doc = json.loads(proto.metadata_props[0].value)
        if field == "std":
            doc["modalities"][0]["scaling"]["std"][0] = float("nan")
        else:
            doc["modalities"][0]["gsd_m"] = float("nan")
        proto.metadata_props[0].value = json.dumps(doc)      # writes the token NaN
        assert "NaN" in proto.metadata_props[0].value
        path = tmp_path / f"nan-{field}.onnx"
        onnx.save(proto, str(path))
        with pytest.raises(ContractError, match=needle):
            read_model_metadata(str(path))


def test_deeply_nested_file_metadata_is_refused(tmp_path, tiny_models):
    import onnx

    proto = onnx.load(tiny_models["segmentation"])
    proto.metadata_props[0].value = '{"a": ' * 100_000 + "1" + "}" * 100_000
    path = tmp_path / "deep.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ContractError):
        read_model_metadata(str(path))


def test_missing_file():
    with pytest.raises(ModelFileError, match="not found"):
        read_model_metadata("/nonexistent/model.onnx")


def test_corrupt_file(tmp_path, tiny_models):
    bad = tmp_path / "bad.onnx"
    data = open(tiny_models["segmentation"], "rb").read()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        read_model_metadata(str(bad))


def test_onnx_without_metadata(tmp_path, tiny_models):
    import onnx

    proto = onnx.load(tiny_models["segmentation"])
    del proto.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ContractError, match=f"no '{METADATA_KEY}' entry"):
        read_model_metadata(str(path))


def test_metadata_disagreeing_with_graph(tmp_path, tiny_models):
    import onnx

    proto = onnx.load(tiny_models["segmentation"])
    doc = json.loads(proto.metadata_props[0].value)
    doc["modalities"][1]["name"] = "dsm"
    proto.metadata_props[0].value = json.dumps(doc)
    path = tmp_path / "mismatch.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ContractError, match="missing input 'dsm'"):
        read_model_metadata(str(path))


def test_build_metadata_validates():
    with pytest.raises(ContractError):
        build_metadata(name="x", task="segmentation", reference_modality="s2", modalities=[],
                       provenance={"training_data": "", "licence": "", "metrics": {}})


# ------------------------------------------------------------------ property-based
JSON_LEAVES = (st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _parse_or_contract_error(doc):
    try:
        meta = parse_metadata(doc)
    except ContractError:
        return None
    assert meta.schema_version in (1, 2)
    return meta


@SETTINGS
@given(JSON)
def test_random_json_values_raise_only_contract_errors(doc):
    _parse_or_contract_error(doc)
    _parse_or_contract_error(json.dumps(doc))


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_random_text_raises_only_contract_errors(text):
    _parse_or_contract_error(text)


def _paths(doc, prefix=()):
    """Every (path) to a value inside a document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, prefix + (i,)))
    return out


@SETTINGS
@given(st.data())
def test_mutated_valid_documents_raise_only_contract_errors(data):
    """A valid document (both versions, any task, with radiometry) with 1-3 of its values
    replaced by random JSON or deleted."""
    task = data.draw(st.sampled_from(["segmentation", "classification", "embedding"]))
    doc = tiny_metadata(task).to_dict()
    doc["schema_version"] = data.draw(st.sampled_from([1, 2]))
    doc["modalities"][1]["radiometry"] = {"product": "DEM", "quantity": "elevation",
                                          "units": "m", "value_range": [[0.0, 900.0]]}
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
        if not isinstance(doc, dict):
            break
    _parse_or_contract_error(doc)
    try:
        text = json.dumps(doc)
    except (TypeError, ValueError):
        return
    _parse_or_contract_error(text)
