"""Spatially blocked cross-validation and learning curves of per-pixel classifiers.

Pixels are grouped into square blocks of ``block_px`` reference pixels; every fold holds out
whole blocks (scikit-learn's GroupKFold), so a held-out pixel's neighbours are never in the
training part of its fold (Roberts et al. 2017, Ecography 40, 913-929, "Cross-validation
strategies for data with temporal, spatial, hierarchical, or phylogenetic structure").
Figures: overall accuracy, per-class F1, the confusion matrix summed over folds, and a
learning curve (accuracy against the number of labelled training pixels, the training part of
each fold subsampled per class with a fixed seed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import CancelledError, InputError

#: fractions of each fold's training pixels for the learning curve
CURVE_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class CvResult:
    """Cross-validated figures of one classifier.

    Attributes:
        confusion: int [K, K] rows = reference, columns = prediction, over all folds.
        overall: overall accuracy; fold_overall: per fold.
        f1: per-class F1 (NaN for a class without reference or prediction pixels).
        curve: [(mean training pixels, overall accuracy, macro F1)] per fraction.
    """

    confusion: np.ndarray
    overall: float
    fold_overall: list
    f1: np.ndarray
    curve: list = field(default_factory=list)

    @property
    def macro_f1(self) -> float:
        f = self.f1[np.isfinite(self.f1)]
        return float(f.mean()) if f.size else float("nan")

    def to_dict(self, names) -> dict:
        return {"overall_accuracy": round(self.overall, 4),
                "overall_accuracy_folds": [round(x, 4) for x in self.fold_overall],
                "macro_f1": round(self.macro_f1, 4),
                "f1": {n: (None if not np.isfinite(v) else round(float(v), 4))
                       for n, v in zip(names, self.f1)},
                "confusion": self.confusion.tolist(),
                "learning_curve": [{"train_pixels": int(a), "overall_accuracy": round(b, 4),
                                    "macro_f1": round(c, 4)} for a, b, c in self.curve]}


def blocks(rows: np.ndarray, cols: np.ndarray, block_px: int) -> np.ndarray:
    """int64 [N]: the block id of each pixel."""
    br, bc = rows // block_px, cols // block_px
    return br * (int(bc.max()) + 1 if bc.size else 1) + bc


def folds(groups: np.ndarray, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train index, test index) per fold; fewer folds when there are fewer blocks.

    Raises:
        InputError: fewer than 2 blocks hold labels (nothing to cross-validate on).
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError("all labels fall in one cross-validation block: draw labels over a "
                         "larger area or choose a smaller block size")
    k = min(n_folds, n_groups)
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))


def confusion(y, p, k) -> np.ndarray:
    return np.bincount(np.asarray(y) * k + np.asarray(p), minlength=k * k).reshape(k, k)


def f1_scores(conf: np.ndarray) -> np.ndarray:
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1)
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), np.nan)


def subsample(y: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Indices keeping ``fraction`` of each class (at least 2 pixels, or all it has)."""
    keep = []
    for k in np.unique(y):
        idx = np.nonzero(y == k)[0]
        n = min(len(idx), max(2, int(round(fraction * len(idx)))))
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def cross_validate(make: Callable, x: np.ndarray, y: np.ndarray, splits, n_classes: int,
                   fractions=CURVE_FRACTIONS, seed: int = 0,
                   progress: Callable[[float], None] | None = None,
                   is_cancelled: Callable[[], bool] | None = None) -> CvResult:
    """Fit ``make()`` (a scikit-learn estimator) on each fold's training part and score it on
    the held-out blocks; the curve refits on subsamples of the training part.

    Raises:
        CancelledError: when ``is_cancelled()`` turns True between fits.
    """
    rng = np.random.default_rng(seed)
    total = len(splits) * len(fractions)
    done = 0
    conf = np.zeros((n_classes, n_classes), dtype=np.int64)
    fold_oa = []
    curve_sums = {f: [0.0, 0.0, 0.0] for f in fractions}
    for train, test in splits:
        for frac in sorted(fractions):
            if is_cancelled and is_cancelled():
                raise CancelledError("training cancelled")
            sub = train[subsample(y[train], frac, rng)] if frac < 1 else train
            model = make().fit(x[sub], y[sub])
            pred = model.predict(x[test])
            c = confusion(y[test], pred, n_classes)
            oa = float(np.trace(c) / max(c.sum(), 1))
            f1 = f1_scores(c)
            curve_sums[frac][0] += len(sub)
            curve_sums[frac][1] += oa
            curve_sums[frac][2] += float(np.nanmean(f1)) if np.isfinite(f1).any() else 0.0
            if frac == max(fractions):
                conf += c
                fold_oa.append(oa)
            done += 1
            if progress:
                progress(done / total)
    n = len(splits)
    curve = [(s[0] / n, s[1] / n, s[2] / n) for f, s in sorted(curve_sums.items())]
    return CvResult(conf, float(np.trace(conf) / max(conf.sum(), 1)), fold_oa, f1_scores(conf),
                    curve)
