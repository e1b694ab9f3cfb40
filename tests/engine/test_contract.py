"""The contract as the engine reads it: valid documents parse, each invalid field is named."""
import copy
import json

import pytest

from engine.contract import (METADATA_KEY, SCHEMA_VERSION, build_metadata, expected_inputs,
                             parse_metadata, read_model_metadata)
from engine.errors import ContractError, ModelFileError
from training.tiny import tiny_metadata


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
