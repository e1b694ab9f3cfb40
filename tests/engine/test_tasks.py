"""The task registry (engine/tasks): what each task declares, how it decodes, and that a
new task is one module plus one registry entry (docs/architecture.md, "Adding a task")."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

from engine import contract
from engine.contract import build_metadata, check_graph_io, expected_outputs
from engine.errors import ContractError
from engine.tasks import (CLASS_NODATA, EMBEDDINGS_OUTPUT, STYLE_CLASSES, STYLE_NONE, TASKS,
                          OutputLayout, TaskSpec, get_task, written_task)
from engine.tasks.spec import confidence, decode_float, same_grid

Arg = namedtuple("Arg", "name type shape")
CLASSES = [{"id": 0, "name": "forest", "color": "#00aa00"},
           {"id": 1, "name": "water", "color": "#0000ff"},
           {"id": 2, "name": "urban", "color": "#aa0000"}]


def _meta(task: str, **kw):
    doc = dict(
        name=f"m-{task}", task=task, reference_modality="s2",
        modalities=[{"name": "s2", "bands": ["B02", "B03"], "gsd_m": 10.0, "tile_px": 16,
                     "patch_px": 4, "min_dates": 1, "max_dates": 3,
                     "scaling": {"transform": "none", "mean": [0.0, 0.0], "std": [1.0, 1.0]},
                     "nodata": {"fill_value": 0.0}}],
        classes=[] if task == "embedding" else CLASSES, embedding_dim=8,
        provenance={"training_data": "none", "licence": "MIT", "metrics": {}})
    doc.update(kw)
    return build_metadata(**doc)


def test_the_contract_reads_its_tasks_from_the_registry():
    assert contract.TASKS == tuple(TASKS) == ("segmentation", "classification", "embedding")
    assert contract.OUTPUT_NAMES == {"segmentation": "logits", "classification": "logits",
                                     "embedding": "embeddings"}
    assert {t.algorithm_id for t in TASKS.values()} == {"segment", "classify", "embed"}


@pytest.mark.parametrize("task, factor, shape, style", [
    ("segmentation", 1, (None, 3, 16, 16), STYLE_CLASSES),
    ("classification", 16, (None, 3), STYLE_CLASSES),
    ("embedding", 4, (None, 8, 4, 4), STYLE_NONE),
])
def test_each_task_declares_grid_shape_and_style(task, factor, shape, style):
    meta = _meta(task)
    spec = get_task(task)
    assert spec.grid_factor(meta.reference) == factor
    assert spec.output_shape(meta) == shape and len(shape) == spec.output_rank
    assert expected_outputs(meta)[spec.output_name] == shape
    assert spec.default_style(meta) == style


def test_segmentation_decodes_argmax_with_nodata_and_confidence():
    values = np.zeros((3, 2, 2))
    values[1, 0, 0] = 2.0
    values[2, 1, 1] = 1.0
    ok = np.array([[True, True], [False, True]])
    out = get_task("segmentation").decode(values, ok, _meta("segmentation"))
    assert out.dtype == np.uint8 and out.shape == (1, 2, 2)
    assert out[0].tolist() == [[1, 0], [CLASS_NODATA, 2]]
    conf = confidence(values, ok)
    assert conf.dtype == np.float32 and np.isnan(conf[0, 1, 0])
    assert conf[0, 0, 1] == pytest.approx(1 / 3)
    assert conf[0, 0, 0] == pytest.approx(np.exp(2) / (np.exp(2) + 2))


def test_multilabel_classification_writes_sigmoid_scores_per_class():
    meta = _meta("classification", multilabel=True)
    spec = get_task("classification")
    assert spec.layout(meta) == OutputLayout(3, "float32", ("forest", "water", "urban"))
    assert spec.default_style(meta) == STYLE_NONE
    values = np.array([[[0.0]], [[np.log(3.0)]], [[-np.log(3.0)]]])
    out = spec.decode(values, np.ones((1, 1), bool), meta)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [0.5, 0.75, 0.25], rtol=1e-6)
    assert spec.to_grid(np.zeros((5, 3))).shape == (5, 3, 1, 1)


def test_embeddings_of_any_contract_2_model_are_written_as_the_embedding_task():
    seg = _meta("segmentation")
    assert written_task(seg) is get_task("segmentation")
    assert written_task(seg, EMBEDDINGS_OUTPUT) is get_task("embedding")
    with pytest.raises(KeyError):
        written_task(_meta("embedding"), "logits")   # logits: two tasks give it
    assert get_task("embedding").layout(seg).band_names[:2] == ("embedding_0", "embedding_1")
    out = decode_float(np.ones((2, 1, 2)), np.array([[True, False]]), seg)
    assert out[:, 0, 0].tolist() == [1.0, 1.0] and np.isnan(out[:, 0, 1]).all()


def _values_shape(meta):
    ref = meta.reference
    return (None, len(meta.classes), ref.tile_px, ref.tile_px)


REGRESSION = TaskSpec(
    name="regression", output_name="values", output_rank=4, has_classes=True,
    multilabel=False, needs_embedding_dim=False, overlapping_tiles=True,
    algorithm_id="regress", grid_factor=lambda ref: 1, output_shape=_values_shape,
    channels=lambda meta: len(meta.classes), to_grid=same_grid,
    layout=lambda meta: OutputLayout(len(meta.classes), "float32",
                                     tuple(c.name for c in meta.classes)),
    decode=decode_float, default_style=lambda meta: STYLE_NONE)


def test_a_new_task_is_one_registry_entry(monkeypatch):
    with pytest.raises(ContractError, match="field 'task' must be one of"):
        _meta("regression")
    monkeypatch.setitem(TASKS, "regression", REGRESSION)
    meta = _meta("regression")
    assert meta.output_name == "values" and meta.output_names == ("values", EMBEDDINGS_OUTPUT)
    assert expected_outputs(meta) == {"values": (None, 3, 16, 16),
                                      EMBEDDINGS_OUTPUT: (None, 8, 4, 4)}
    inputs = [Arg("ref_date", "tensor(int32)", [None, 3]),
              Arg("s2", "tensor(float)", [None, None, 2, 16, 16]),
              Arg("s2_dates", "tensor(int32)", [None, None, 3]),
              Arg("s2_mask", "tensor(bool)", [None, None, 16])]
    check_graph_io(meta, inputs, [Arg("values", "tensor(float)", [None, 3, 16, 16]),
                                  Arg("embeddings", "tensor(float)", [None, 8, 4, 4])])
    with pytest.raises(ContractError, match="output 'values' has size 2 on axis 1 .*'classes'"):
        check_graph_io(meta, inputs, [Arg("values", "tensor(float)", [None, 2, 16, 16]),
                                      Arg("embeddings", "tensor(float)", [None, 8, 4, 4])])
