"""maestro_plugin.model_file: the model's metadata read from the ONNX protobuf without
onnxruntime (the dock shows what a model needs before onnxruntime is installed)."""
import sys

import pytest

from maestro_plugin.model_file import ModelFileReadError, read_metadata_props, read_model_card


def test_card_without_onnxruntime_equals_the_engines_reading(monkeypatch, tiny_models):
    from engine.contract import read_model_metadata

    expected = {task: read_model_metadata(path) for task, path in tiny_models.items()}
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    for task, path in tiny_models.items():
        assert read_model_card(path) == expected[task]


def test_metadata_props_match_the_onnx_package(tiny_models):
    import onnx

    path = tiny_models["segmentation"]
    model = onnx.load(path)
    assert read_metadata_props(path) == {p.key: p.value for p in model.metadata_props}


def test_bad_files_are_refused_with_the_file_named(tmp_path, tiny_models,
                                                   onnx_without_metadata):
    from engine.errors import ContractError

    with pytest.raises(ContractError, match="without MAESTRO metadata"):
        read_model_card(onnx_without_metadata)
    text = tmp_path / "text.onnx"
    text.write_bytes(b"not a model")
    with pytest.raises(ModelFileReadError, match="text.onnx' is not a valid ONNX model"):
        read_model_card(str(text))
    data = open(tiny_models["segmentation"], "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises((ModelFileReadError, ContractError)):
        read_model_card(str(cut))
    with pytest.raises(ModelFileReadError, match="not found"):
        read_model_card(str(tmp_path / "missing.onnx"))
