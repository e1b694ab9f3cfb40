"""The pretraining-vs-scratch evidence script: its --short run end to end (real data, a few
steps; < 30 s on one thread), the frozen encoder of the probe and the paired statistics."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from training.recipes import default_model as recipe
from training.recipes import pretraining_evidence as evidence
from training.recipes.pretrain_data import SloveniaCrops
from training.recipes.slovenia import IGNORE, TRAIN_COLS, load_sample, sparse_labels


def test_short_run_writes_paired_results(tmp_path):
    assert evidence.main(["--short", "--seeds", "3", "4", "--out", str(tmp_path),
                          "--cache", ""]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [row["seed"] for row in doc["rows"]] == [3, 4]
    for row in doc["rows"]:
        for key in ("pretrained", "scratch", "probe_pretrained", "probe_random"):
            assert 0.0 <= row[key]["overall_accuracy"] <= 1.0 and row[key]["pixels"] > 0
    oa = doc["comparisons"]["pretrained - scratch"]["overall_accuracy"]
    diffs = [r["pretrained"]["overall_accuracy"] - r["scratch"]["overall_accuracy"]
             for r in doc["rows"]]
    assert oa["difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert oa["wins"] == sum(d > 0 for d in diffs)
    assert "mean ± std" in evidence.table(doc)


def test_probe_finetune_protocol_adds_a_full_scratch_arm(tmp_path):
    assert evidence.main(["--short", "--seeds", "5", "--out", str(tmp_path), "--cache", "",
                          "--protocol", "probe-finetune", "--label-fraction", "0.1"]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["protocol"] == "probe-finetune" and doc["label_fraction"] == 0.1
    row = doc["rows"][0]
    assert 0 < row["labelled_train_px"] < 0.2 * load_sample().target[:, slice(*TRAIN_COLS)].size
    assert set(doc["comparisons"]) == {"pretrained - scratch", "pretrained - scratch_full",
                                       "probe_pretrained - probe_random"}
    assert "scratch_full OA / mIoU" in evidence.table(doc)


def test_probe_then_finetune_starts_from_the_probed_head(monkeypatch):
    rc = recipe.Recipe(**recipe.SHORT)
    torch.set_num_threads(1)
    crops = SloveniaCrops(load_sample(), recipe.sample_datetimes(), TRAIN_COLS, rc.tile_px,
                          labels=True)
    seen = {}
    real_finetune = recipe.finetune

    def spy(rc_, crops_, pretrained, log=print, heads=False):
        seen["heads"] = heads
        seen["state"] = {k[len("model."):]: v for k, v in
                         torch.load(pretrained, weights_only=True)["state_dict"].items()}
        return real_finetune(rc_, crops_, pretrained, log=log, heads=heads)

    monkeypatch.setattr(recipe, "finetune", spy)
    probed = evidence.probe(rc, crops, None, steps=2, log=lambda *_: None).state_dict()
    first, tuned = evidence.probe_then_finetune(rc, crops, None, probe_steps=2,
                                                log=lambda *_: None)
    assert all(torch.equal(first.state_dict()[k], probed[k]) for k in probed)
    assert any(not torch.equal(tuned.state_dict()[k], probed[k]) for k in probed
               if not k.startswith("heads."))              # the encoder trained too
    heads = [k for k in probed if k.startswith("heads.")]
    assert heads and all(torch.equal(seen["state"][k], probed[k]) for k in heads)
    assert seen["heads"] is True                 # the probed head is loaded, not redrawn
    assert all(torch.equal(tuned.state_dict()[k], probed[k]) for k in probed
               if k.startswith("heads.")) is False     # and then trained


def test_probe_trains_the_head_only():
    rc = recipe.Recipe(**recipe.SHORT)
    torch.set_num_threads(1)
    crops = SloveniaCrops(load_sample(), recipe.sample_datetimes(), TRAIN_COLS, rc.tile_px,
                          labels=True)
    torch.manual_seed(rc.seed + 1)
    from training.models import Maestro

    before = Maestro(recipe.maestro_config(rc)).state_dict()
    after = evidence.probe(rc, crops, None, steps=2, log=lambda *_: None).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("heads.") for k in changed)


def test_compare_pairs_seeds():
    rows = [{"a": {"overall_accuracy": a, "miou": a}, "b": {"overall_accuracy": b, "miou": b}}
            for a, b in [(0.9, 0.8), (0.7, 0.75), (0.6, 0.5)]]
    out = evidence.compare(rows, "a", "b")["miou"]
    assert out["wins"] == 2 and out["seeds"] == 3
    assert out["difference"]["mean"] == pytest.approx((0.1 - 0.05 + 0.1) / 3)
    assert out["difference"]["std"] == pytest.approx(np.std([0.1, -0.05, 0.1], ddof=1))


def test_sparse_labels_keep_a_fraction_of_each_class_inside_the_columns():
    target = load_sample().target
    sparse = sparse_labels(target, TRAIN_COLS, 0.05, seed=3)
    inside, outside = slice(*TRAIN_COLS), slice(TRAIN_COLS[1], None)
    assert (sparse[:, outside] == target[:, outside]).all()
    kept = sparse[:, inside] >= 0
    assert (sparse[:, inside][kept] == target[:, inside][kept]).all()    # labels not changed
    for k in np.unique(target[:, inside][target[:, inside] >= 0]):
        n = int((target[:, inside] == k).sum())
        assert int((sparse[:, inside] == k).sum()) == min(n, max(5, round(0.05 * n)))
    assert (sparse_labels(target, TRAIN_COLS, 0.05, seed=4) != sparse).any()  # drawn per seed
    assert (sparse_labels(target, TRAIN_COLS, 1.0, seed=3) == target).all()
    with pytest.raises(ValueError, match="label fraction"):
        sparse_labels(target, TRAIN_COLS, 0.0, seed=3)
    assert IGNORE in sparse[:, inside]


def test_pretrained_state_is_cached_and_reused(tmp_path):
    rc = recipe.Recipe(**recipe.SHORT)
    torch.set_num_threads(1)
    sample, datetimes = load_sample(), recipe.sample_datetimes()
    first, history, seconds = evidence.pretrained_state(rc, sample, datetimes, str(tmp_path),
                                                        log=lambda *_: None)
    assert seconds > 0 and len(list(tmp_path.glob("pretrained-*.pt"))) == 1
    again, history2, seconds2 = evidence.pretrained_state(rc, sample, datetimes, str(tmp_path),
                                                          log=lambda *_: None)
    assert seconds2 == 0.0 and history2 == history
    assert again == first
    weights = torch.load(first, weights_only=True)["state_dict"]
    assert weights and all(k.startswith("model.") for k in weights)
    # a fine-tuning setting does not change the key, a pretraining one does
    other = dataclasses.replace(rc, finetune_steps=7)
    evidence.pretrained_state(other, sample, datetimes, str(tmp_path), log=lambda *_: None)
    assert len(list(tmp_path.glob("pretrained-*.pt"))) == 1
    longer = dataclasses.replace(rc, pretrain_steps=rc.pretrain_steps + 1)
    _, history3, _ = evidence.pretrained_state(longer, sample, datetimes, str(tmp_path),
                                               log=lambda *_: None)
    assert len(history3) == len(history) + 1
    assert len(list(tmp_path.glob("pretrained-*.pt"))) == 2
