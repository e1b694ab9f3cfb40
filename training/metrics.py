"""Evaluation metrics as in the MAESTRO paper (official: maestro/train/metric.py).

- :class:`MonoLabelMetric` (segmentation, single-label classification): a confusion matrix
  accumulated over the epoch; overall accuracy (OA), mean IoU and mean F1 over the classes
  *with support* (TP + FN > 0), i.e. classes absent from the reference are left out.
- :class:`MultiLabelMetric` (TreeSatAI-TS): sigmoid > 0.5 per label; per-label F1;
  ``weighted_f1`` = sum of F1 x support share (the "wF1" the paper reports), plus macro F1.

Both are ``torchmetrics.Metric`` so their states are summed across DDP processes.
"""
from __future__ import annotations

import torch
from torchmetrics import Metric


class MonoLabelMetric(Metric):
    """Confusion-matrix metrics for K classes; targets equal to ``ignore_index`` are skipped.

    ``update(preds, target)``: ``preds`` logits [B, K, ...] or class ids [B, ...];
    ``target`` class ids [B, ...] (long).
    """

    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int = -1):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 (got {num_classes})")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # confusion[i, j] = pixels of reference class i predicted as j.
        self.add_state("confusion", default=torch.zeros(num_classes, num_classes, dtype=torch.long),
                       dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.is_floating_point() and preds.dim() == target.dim() + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} and target {tuple(target.shape)} "
                             "do not match")
        keep = target != self.ignore_index
        t = target[keep].long()
        p = preds[keep].long()
        if t.numel() and (t.min() < 0 or t.max() >= self.num_classes):
            raise ValueError(f"target holds class ids outside 0..{self.num_classes - 1}")
        k = self.num_classes
        self.confusion += torch.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def compute(self) -> dict[str, torch.Tensor]:
        cm = self.confusion.double()
        tp = cm.diag()
        support = cm.sum(dim=1)           # TP + FN per reference class
        predicted = cm.sum(dim=0)         # TP + FP
        present = support > 0
        iou = tp / (support + predicted - tp).clamp(min=1)
        f1 = 2 * tp / (support + predicted).clamp(min=1)
        total = cm.sum().clamp(min=1)
        n = present.sum().clamp(min=1)
        return {
            "oa": (tp.sum() / total).float(),
            "miou": (iou[present].sum() / n).float(),
            "mf1": (f1[present].sum() / n).float(),
            "iou_per_class": iou.float(),
        }


class MultiLabelMetric(Metric):
    """Multilabel F1 with the positive threshold at sigmoid(logit) > 0.5.

    ``update(logits, target)``: ``logits`` [B, K] float, ``target`` [B, K] in {0, 1}.
    """

    full_state_update = False

    def __init__(self, num_labels: int, threshold: float = 0.5):
        super().__init__()
        self.num_labels = num_labels
        self.threshold = threshold
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=torch.zeros(num_labels, dtype=torch.long),
                           dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if logits.shape != target.shape or logits.dim() != 2:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must "
                             "both be [B, K]")
        pred = torch.sigmoid(logits.float()) > self.threshold
        ref = target > 0.5
        self.tp += (pred & ref).sum(dim=0)
        self.fp += (pred & ~ref).sum(dim=0)
        self.fn += (~pred & ref).sum(dim=0)

    def compute(self) -> dict[str, torch.Tensor]:
        tp, fp, fn = self.tp.double(), self.fp.double(), self.fn.double()
        support = tp + fn
        f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
        share = support / support.sum().clamp(min=1)
        present = support > 0
        return {
            "weighted_f1": (f1 * share).sum().float(),
            "macro_f1": (f1[present].sum() / present.sum().clamp(min=1)).float(),
            "f1_per_label": f1.float(),
        }
