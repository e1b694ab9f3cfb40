"""Metrics as in the paper, checked against scikit-learn on the same predictions."""
import numpy as np
import torch
from sklearn.metrics import f1_score, jaccard_score

from training.metrics import MonoLabelMetric, MultiLabelMetric


def test_monolabel_matches_sklearn_over_present_classes():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, 500)          # class 4 never in the reference
    pred = np.where(rng.random(500) < 0.6, target, rng.integers(0, 5, 500))
    target[:20] = -1                          # ignored pixels
    m = MonoLabelMetric(5)
    m.update(torch.from_numpy(pred[:250]), torch.from_numpy(target[:250]))
    m.update(torch.from_numpy(pred[250:]), torch.from_numpy(target[250:]))
    out = m.compute()
    keep = target >= 0
    present = np.unique(target[keep])
    assert np.isclose(out["oa"].item(), (pred[keep] == target[keep]).mean())
    assert np.isclose(out["miou"].item(), jaccard_score(target[keep], pred[keep], labels=present,
                                                        average="macro"), atol=1e-6)
    assert np.isclose(out["mf1"].item(), f1_score(target[keep], pred[keep], labels=present,
                                                  average="macro"), atol=1e-6)


def test_monolabel_accepts_logits_and_refuses_bad_ids():
    m = MonoLabelMetric(3)
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2] = 1.0
    m.update(logits, torch.tensor([[[2, 2], [1, -1]]]))
    assert np.isclose(m.compute()["oa"].item(), 2 / 3)
    try:
        m.update(torch.tensor([0]), torch.tensor([7]))
    except ValueError as e:
        assert "outside" in str(e)
    else:
        raise AssertionError("class id 7 accepted for 3 classes")


def test_multilabel_weighted_f1_matches_sklearn():
    rng = np.random.default_rng(1)
    target = (rng.random((64, 15)) < 0.2).astype(np.float32)
    logits = rng.normal(size=(64, 15)).astype(np.float32) + 2 * (target - 0.5)
    m = MultiLabelMetric(15)
    m.update(torch.from_numpy(logits), torch.from_numpy(target))
    out = m.compute()
    pred = (1 / (1 + np.exp(-logits)) > 0.5).astype(int)
    assert np.isclose(out["weighted_f1"].item(),
                      f1_score(target, pred, average="weighted", zero_division=0), atol=1e-6)
