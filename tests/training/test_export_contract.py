"""The exporter's side of the contract: what it writes is what the engine needs."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.contract import METADATA_KEY, expected_inputs, parse_metadata
from training.export import example_batch, input_order
from tests.tiny_model import _TinyNet, tiny_metadata


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
    assert meta.schema_version == 2 and meta.embedding_dim == 16
    assert [o.name for o in proto.graph.output] == list(meta.output_names)
    assert [o.name for o in proto.graph.output][-1] == "embeddings"


def test_dynamic_batch_and_dates_match_torch(tiny_models):
    """The exported tiny MAESTRO equals the same seeded torch network for other batch
    sizes and date counts than the export example (dynamic axes), padded dates included."""
    meta = tiny_metadata("segmentation")
    torch.manual_seed(0)  # export_tiny's seed: the same weights as the exported file
    net = _TinyNet(meta).eval()
    sess = ort.InferenceSession(tiny_models["segmentation"], providers=["CPUExecutionProvider"])
    for batch, dates in [(1, 1), (3, 5)]:
        feed = example_batch(meta, batch=batch, dates={"s2": dates, "dem": 1}, seed=batch)
        if dates > 1:
            feed["s2_mask"][0, -2:] = True
        with torch.no_grad():
            ref = net(feed).numpy()
        got = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})[0]
        assert got.shape == (batch, 3, 16, 16)
        assert np.abs(got - ref).max() <= 1e-4
