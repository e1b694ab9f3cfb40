"""Contract schema version 2 through real exports and real onnxruntime sessions: token masks
[batch, dates, tokens], the second output ``embeddings``, radiometry metadata, torch parity
with random masks, values of missing tokens never matter, no NaN, the hour ignored, and the
version-1 graph still exportable and readable."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.contract import METADATA_KEY, build_metadata, read_model_metadata
from training.export import config_from_metadata, example_batch, export_onnx, input_order
from training.models import Maestro

from .test_export_parity import TOLERANCE, _metadata
from .test_model_missing import pixel_mask

DIMS = dict(embed_dim=24, depth=2, inter_depth=1, heads=2, dim_head=8, mlp_ratio=2, dec_dim=20,
            dec_depth=1, dec_heads=2, dec_dim_head=8, head_heads=4, grid_pos_enc=8)
RADIOMETRY = {"s2": {"product": "Sentinel-2 L1C", "quantity": "reflectance",
                     "units": "reflectance x 10000",
                     "value_range": [[100.0 + i, 4000.0 + i] for i in range(10)]},
              "dem": {"product": "DEM", "quantity": "elevation", "units": "m",
                      "value_range": [[200.0, 900.0], [190.0, 880.0]]}}


def _model(meta, seed=1):
    cfg = config_from_metadata(meta, **DIMS)
    cfg.modality("dem").rescale_elev = True
    torch.manual_seed(seed)
    return Maestro(cfg).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """task -> (torch model, metadata read back, onnxruntime session, path)."""
    out = {}
    folder = tmp_path_factory.mktemp("v2")
    for task in ("segmentation", "classification", "embedding"):
        meta = _metadata(task)
        model = _model(meta)
        path = str(folder / f"{task}.onnx")
        written = export_onnx(model, meta, path, radiometry=RADIOMETRY)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        out[task] = (model, written, sess, path)
    return out


def _feed(meta, batch, dates, seed, p_missing=0.3):
    """example_batch with random token masks (never a whole sample) and random hours."""
    feed = example_batch(meta, batch=batch, dates=dates, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    for m in meta.modalities:
        mask = torch.rand(feed[f"{m.name}_mask"].shape, generator=gen) < p_missing
        mask[:, 0, 0] = False
        feed[f"{m.name}_mask"] = mask
    return feed


def _run(sess, meta, feed):
    names = [o.name for o in sess.get_outputs()]
    got = sess.run(None, {k: feed[k].numpy() for k in input_order(meta)})
    return dict(zip(names, got))


def _dates(t_s2, t_asc, t_desc):
    return {"s2": t_s2, "s1_asc": t_asc, "s1_desc": t_desc, "dem": 1}


def test_v2_export_round_trip(exported):
    model, meta, sess, path = exported["segmentation"]
    again = read_model_metadata(path)
    assert again == meta
    assert meta.schema_version == 2 and meta.token_masks
    assert meta.embedding_dim == 24                       # from the network
    assert meta.modality("s2").radiometry.value_range[3] == (103.0, 4003.0)
    assert meta.modality("dem").radiometry.units == "m"
    doc = json.loads({p.key: p.value for p in onnx.load(path).metadata_props}[METADATA_KEY])
    assert doc["schema_version"] == 2
    assert doc["modalities"][0]["radiometry"]["product"] == "Sentinel-2 L1C"
    assert "radiometry" not in doc["modalities"][1]       # s1_asc: none given
    inputs = {i.name: i for i in sess.get_inputs()}
    assert inputs["s2_mask"].type == "tensor(bool)"
    assert inputs["s2_mask"].shape[2] == 16 and isinstance(inputs["s2_mask"].shape[1], str)
    assert inputs["dem_mask"].shape[2] == 4
    outputs = {o.name: o.shape for o in sess.get_outputs()}
    assert list(outputs) == ["logits", "embeddings"]
    assert outputs["logits"][1:] == [4, 16, 16]
    assert outputs["embeddings"][1:] == [24, 4, 4]
    emb = exported["embedding"]
    assert [o.name for o in emb[2].get_outputs()] == ["embeddings"]


@pytest.mark.parametrize("task", ["segmentation", "classification", "embedding"])
def test_onnx_matches_torch_with_random_token_masks(task, exported):
    model, meta, sess, _ = exported[task]
    worst = 0.0
    for batch, t_s2, t_asc, t_desc in [(1, 1, 1, 1), (2, 3, 2, 4), (3, 6, 4, 2)]:
        feed = _feed(meta, batch, _dates(t_s2, t_asc, t_desc), seed=batch * 10 + t_s2)
        with torch.no_grad():
            want = {k: v.numpy() for k, v in model.contract_outputs(feed).items()}
        got = _run(sess, meta, feed)
        assert set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape
            assert np.isfinite(got[name]).all()
            worst = max(worst, float(np.abs(got[name] - want[name]).max()))
    print(f"{task}: max |torch - onnxruntime| with random masks = {worst:.2e}")
    assert worst <= TOLERANCE


@pytest.mark.parametrize("task", ["segmentation", "classification"])
def test_onnx_values_of_missing_tokens_never_matter(task, exported):
    """Missing tokens' pixels replaced by NaN, +-1e30 and noise in the exported graph: every
    output value is unchanged."""
    model, meta, sess, _ = exported[task]
    feed = _feed(meta, 2, _dates(4, 3, 2), seed=7, p_missing=0.4)
    clean = _run(sess, meta, feed)
    gen = torch.Generator().manual_seed(3)
    dirty = dict(feed)
    for m in meta.modalities:
        x = feed[m.name]
        junk = torch.randn(x.shape, generator=gen) * 1e4
        junk.view(-1)[::5] = float("nan")
        junk.view(-1)[1::9] = 1e30
        px = pixel_mask(feed[f"{m.name}_mask"], m.patch_px).expand_as(x)
        dirty[m.name] = torch.where(px, junk, x)
    got = _run(sess, meta, dirty)
    for name in clean:
        assert np.isfinite(got[name]).all(), name
        np.testing.assert_allclose(got[name], clean[name], atol=2e-5, rtol=1e-5)


def test_onnx_no_nan_when_every_token_of_a_location_is_missing(exported):
    model, meta, sess, _ = exported["segmentation"]
    feed = example_batch(meta, batch=2, dates=_dates(3, 2, 2), seed=4)
    for m in meta.modalities:
        mask = feed[f"{m.name}_mask"]
        mask[0, :, 0] = True            # top-left location, every date, every modality
        mask[1] = True                  # every token of the second sample
        feed[m.name] = torch.where(pixel_mask(mask, m.patch_px).expand_as(feed[m.name]),
                                   torch.tensor(float("nan")), feed[m.name])
    got = _run(sess, meta, feed)
    for name, value in got.items():
        assert np.isfinite(value).all(), name
    assert (got["embeddings"][0, :, 0, 0] == 0).all()


def test_onnx_ignores_the_hour(exported):
    model, meta, sess, _ = exported["segmentation"]
    feed = _feed(meta, 2, _dates(3, 2, 2), seed=11)
    base = _run(sess, meta, feed)
    gen = torch.Generator().manual_seed(5)
    for m in meta.modalities:
        dates = feed[f"{m.name}_dates"].clone()
        dates[..., 2] = torch.randint(0, 24, dates.shape[:2], generator=gen, dtype=torch.int32)
        feed[f"{m.name}_dates"] = dates
    feed["ref_date"] = feed["ref_date"].clone()
    feed["ref_date"][:, 2] = 17
    hours = _run(sess, meta, feed)
    for name in base:
        np.testing.assert_array_equal(hours[name], base[name])


def test_version_1_graph_is_still_exported_and_read(tmp_path):
    """schema_version=1 metadata exports the version-1 graph (date mask [batch, dates],
    one output), which the engine's reader accepts: old models keep running."""
    doc = _metadata("segmentation").to_dict()
    doc["schema_version"] = 1
    meta = build_metadata(**{k: doc[k] for k in (
        "name", "task", "reference_modality", "modalities", "classes", "provenance",
        "multilabel", "embedding_dim", "description", "version")}, schema_version=1)
    model = _model(meta)
    path = str(tmp_path / "v1.onnx")
    written = export_onnx(model, meta, path)
    assert written.schema_version == 1 and not written.token_masks
    assert written.embedding_dim is None
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert len(sess.get_inputs()[2].shape) == 2                       # s2_mask [batch, dates]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    feed = example_batch(written, batch=2, dates=_dates(3, 2, 2), seed=2)
    assert feed["s2_mask"].shape == (2, 3)
    feed["s2_mask"][0, -1] = True
    with torch.no_grad():
        want = model(feed).numpy()
    got = sess.run(None, {k: feed[k].numpy() for k in input_order(written)})[0]
    assert np.abs(got - want).max() <= TOLERANCE
