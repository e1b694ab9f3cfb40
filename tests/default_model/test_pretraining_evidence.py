"""The pretraining-vs-scratch evidence script: its --short run end to end (real data, a few
steps; < 30 s on one thread), the frozen encoder of the probe and the paired statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.recipes import default_model as recipe
from training.recipes import pretraining_evidence as evidence
from training.recipes.pretrain_data import SloveniaCrops
from training.recipes.slovenia import TRAIN_COLS, load_sample


def test_short_run_writes_paired_results(tmp_path):
    assert evidence.main(["--short", "--seeds", "3", "4", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [row["seed"] for row in doc["rows"]] == [3, 4]
    for row in doc["rows"]:
        for key in ("pretrained", "scratch", "probe_pretrained", "probe_random"):
            assert 0.0 <= row[key]["overall_accuracy"] <= 1.0 and row[key]["pixels"] > 0
    oa = doc["finetune"]["overall_accuracy"]
    diffs = [r["pretrained"]["overall_accuracy"] - r["scratch"]["overall_accuracy"]
             for r in doc["rows"]]
    assert oa["difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert oa["wins"] == sum(d > 0 for d in diffs)
    assert "mean ± std" in evidence.table(doc)


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
