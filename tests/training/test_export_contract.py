"""The exporter's side of the contract: what it writes is what the engine needs."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.contract import METADATA_KEY, expected_inputs, parse_metadata
from training.export import example_batch, input_order
from training.tiny import _TinyNet, tiny_metadata


@pytest.mark.parametrize("task", ["segmentation", "classification", "embedding"])
def test_export_writes_every_field_the_engine_needs(task, tiny_models):
    proto = onnx.load(tiny_models[task])
    props = {p.key: p.value for p in proto.metadata_props}
    assert set(props) == {METADATA_KEY}
    doc = json.loads(props[METADATA_KEY])
    meta = parse_metadata(doc)  # raises if any required field is missing
    for key in ("created", "code_version", "training_data", "licence", "metrics"):
        assert key in doc["provenance"]
    graph_inputs = {i.name for i in proto.graph.input}
    assert graph_inputs == set(expected_inputs(meta))
    assert [o.name for o in proto.graph.output] == [meta.output_name]


def test_dynamic_batch_and_dates_match_torch(tiny_models):
    torch.manual_seed(0)
    meta = tiny_metadata("segmentation")
    sess = ort.InferenceSession(tiny_models["segmentation"], providers=["CPUExecutionProvider"])
    net = _TinyNet(meta)
    net.load_state_dict(_weights_from_onnx(tiny_models["segmentation"], net))
    for batch, dates in [(1, 1), (3, 5)]:
        feed = example_batch(meta, batch=batch, dates={"s2": dates, "dem": 1}, seed=batch)
        ref = net.eval()(feed).detach().numpy()
        got = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})[0]
        assert got.shape == (batch, 3, 16, 16)
        assert np.abs(got - ref).max() <= 1e-4


def _weights_from_onnx(path, net):
    """Read the exported initialisers back into a fresh network (names match the wrapper's)."""
    proto = onnx.load(path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    state = {}
    for key, value in net.state_dict().items():
        state[key] = torch.from_numpy(inits[f"model.{key}"].copy())
    return state
