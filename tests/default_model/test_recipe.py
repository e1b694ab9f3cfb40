"""The default model's recipe: split, metrics, a short run through the real export path, and
agreement between the recipe and the bundled model file, its metrics and its card."""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from training.recipes import default_model as recipe
from training.recipes.pretrain_data import SloveniaCrops
from training.recipes.sample_data import S2_BANDS
from training.recipes.slovenia import (CLASSES, HELDOUT_COLS, IGNORE, TRAIN_COLS, confusion,
                                       load_sample, scores)

MODEL = os.path.join(ROOT, "resources", "models", f"{recipe.NAME}.onnx")
METRICS = os.path.join(ROOT, "resources", "models", f"{recipe.NAME}.metrics.json")
CARD = os.path.join(ROOT, "resources", "models", f"{recipe.NAME}.md")


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_split_is_spatial_and_complete(sample):
    assert TRAIN_COLS[1] + recipe.Recipe().tile_px // 3 <= HELDOUT_COLS[0]
    assert HELDOUT_COLS[1] == sample.target.shape[1]
    # Every class of the model has training pixels; cultivated land (code 1) is ignored.
    train = sample.target[:, TRAIN_COLS[0]:TRAIN_COLS[1]]
    assert set(np.unique(train[train >= 0])) == {c["id"] for c in CLASSES}
    assert (sample.target[sample.codes == 1] == IGNORE).all()


def test_training_crops_never_touch_the_heldout_columns(sample):
    """Crops carry their column index through the pixels: none may reach the buffer."""
    marked = dataclasses.replace(sample, s2=np.broadcast_to(
        np.arange(sample.s2.shape[-1], dtype=np.float32), sample.s2.shape).copy() * 5000)
    crops = SloveniaCrops(marked, recipe.sample_datetimes(), TRAIN_COLS, 32, labels=True,
                          date_dropout=0.0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        batch = crops.batch(8, rng)
        seen.update(np.unique(batch["s2"].numpy()).astype(int).tolist())
    assert max(seen) == TRAIN_COLS[1] - 1 and min(seen) == TRAIN_COLS[0]


def test_scores_follow_the_confusion_matrix():
    target = np.array([0, 0, 1, 1, 2, IGNORE])
    pred = np.array([0, 1, 1, 1, 0, 3])
    s = scores(confusion(pred, target, 4))
    assert s["pixels"] == 5 and s["overall_accuracy"] == pytest.approx(3 / 5)
    assert s["iou"]["forest"] == pytest.approx(1 / 3)      # tp 1, fn 1, fp 1
    assert s["iou"]["grassland"] == pytest.approx(2 / 3)   # tp 2, fp 1
    assert s["iou"]["artificial surface"] is None          # no support: not averaged
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


def test_pretraining_is_seeded():
    rc = recipe.Recipe(**{**recipe.SHORT, "pretrain_steps": 3,
                          "pretrain_sources": ("slovenia", "treesatai")})
    sample = load_sample()
    dts = recipe.sample_datetimes()
    runs = []
    for _ in range(2):
        sources = recipe.load_sources(rc, sample, dts, log=lambda *_: None)
        torch.manual_seed(123)  # the TreeSatAI date choice draws from torch's RNG
        _, history = recipe.pretrain(rc, sources, log=lambda *_: None)
        runs.append(history)
    assert runs[0] == runs[1]
    assert [name for name, _ in runs[0]] == ["slovenia", "treesatai", "slovenia"]


def test_short_recipe_exports_a_working_model(tmp_path):
    """A few steps of the real recipe, exported through training.export, read back by the
    engine's contract check and run by onnxruntime like the torch model."""
    import onnxruntime as ort

    from engine.contract import read_model_metadata

    rc = recipe.Recipe(**recipe.SHORT)
    doc = recipe.run(rc, str(tmp_path), baselines=False, card=True, log=lambda *_: None)
    path = tmp_path / f"{recipe.NAME}.onnx"
    meta = read_model_metadata(str(path))
    assert meta.provenance["config"] == {"recipe": "training.recipes.default_model",
                                         **rc.to_dict()}
    assert meta.provenance["metrics"]["heldout_miou"] == round(
        doc["results"]["maestro_pretrained"]["miou"], 4)
    assert (tmp_path / f"{recipe.NAME}.md").read_text().count("| MAESTRO, MAE-pretrained") == 1
    # onnxruntime on a real tile equals the torch model re-built from the recipe.
    sample = load_sample()
    crops = SloveniaCrops(sample, recipe.sample_datetimes(), (0, 100), rc.tile_px)
    batch = crops.batch(2, np.random.default_rng(1))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert meta.schema_version == 2 and meta.modality("s2").radiometry is not None
    for m in meta.modalities:          # version 2: token masks [B, T, tokens]
        batch[f"{m.name}_mask"] = batch[f"{m.name}_mask"][:, :, None].expand(
            -1, -1, m.tokens).contiguous()
    feeds = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
    logits, embeddings = session.run(None, feeds)
    assert logits.shape == (2, len(CLASSES), rc.tile_px, rc.tile_px)
    assert embeddings.shape == (2, rc.embed_dim, rc.tile_px // rc.s2_patch_px,
                                rc.tile_px // rc.s2_patch_px)
    assert np.isfinite(logits).all()
    assert doc["onnx_bytes"] == os.path.getsize(path)


# ---------------------------------------------------------------- the bundled model
@pytest.fixture(scope="module")
def bundled():
    from engine.contract import read_model_metadata

    with open(METRICS) as fh:
        return read_model_metadata(MODEL), json.load(fh)


def test_bundled_model_metadata_matches_the_recipe(bundled):
    meta, metrics = bundled
    rc = recipe.Recipe()
    assert meta.name == recipe.NAME and meta.task == "segmentation"
    assert meta.provenance["config"] == {"recipe": "training.recipes.default_model",
                                         **rc.to_dict()}
    assert metrics["recipe"] == rc.to_dict()
    want = recipe.model_metadata(rc)
    plain = tuple(dataclasses.replace(m, radiometry=None) for m in meta.modalities)
    assert plain == want.modalities and meta.classes == want.classes
    # Contract version 2 with the radiometry the run measured (metrics JSON = metadata).
    assert meta.schema_version == 2 and meta.embedding_dim == rc.embed_dim
    for m in meta.modalities:
        rad = metrics["radiometry"][m.name]
        assert m.radiometry.units == rad["units"] and m.radiometry.product == rad["product"]
        assert [list(r) for r in m.radiometry.value_range] == rad["value_range"]
        assert all(lo < hi for lo, hi in m.radiometry.value_range)
    assert meta.modality("s2").radiometry.units == "reflectance x 10000"
    assert meta.modality("dem").radiometry.units == "m"
    s2 = meta.modality("s2")
    assert list(s2.bands) == S2_BANDS and s2.gsd_m == 10.0 and s2.tile_px == rc.tile_px
    assert [c.name for c in meta.classes] == [c["name"] for c in CLASSES]
    assert os.path.getsize(MODEL) <= 20 * 1024 * 1024


def test_bundled_metrics_card_and_metadata_agree(bundled):
    meta, metrics = bundled
    own = metrics["results"]["maestro_pretrained"]
    m = meta.provenance["metrics"]
    assert m["heldout_miou"] == round(own["miou"], 4)
    assert m["heldout_overall_accuracy"] == round(own["overall_accuracy"], 4)
    assert set(metrics["results"]) == {"maestro_pretrained", "maestro_scratch", "random_forest",
                                       "engine_full_raster"}
    card = open(CARD).read()
    for key in ("maestro_pretrained", "maestro_scratch", "random_forest"):
        r = metrics["results"][key]
        assert f"| {100 * r['overall_accuracy']:.1f} | {100 * r['miou']:.1f} |" in card
    assert metrics["onnx_bytes"] == os.path.getsize(MODEL)


def test_bundled_random_forest_figures_are_reproduced(bundled, sample):
    """The classical baseline is cheap: re-run it and compare with the card's figures."""
    from training.baselines.random_forest import run

    _, metrics = bundled
    again = run(sample)["heldout"]
    want = metrics["results"]["random_forest"]
    assert again["overall_accuracy"] == pytest.approx(want["overall_accuracy"], abs=1e-9)
    assert again["miou"] == pytest.approx(want["miou"], abs=1e-9)
