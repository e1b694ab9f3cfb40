"""The bundled Slovenia sample as training arrays, its spatial split and its metrics.

The recipe reads the bundled GeoTIFFs (``resources/sample/``), i.e. exactly what the engine
and the demo read, not the shared .npy arrays they were converted from.

Spatial split (columns of the 100 x 101 px raster, west to east; every row):

- train: columns 0-55 (560 m), where training tiles and labels come from;
- buffer: columns 56-67 (120 m), labels never used, so that held-out pixels are at least
  12 px away from any training label;
- held out: columns 68-99 (320 m = one 32 px tile wide), for evaluation only.

No training tile overlaps the held-out columns. The imagery of the whole area (no labels) is
used for the self-supervised pretraining, as any unlabelled imagery would be.

Classes: the reference uses eo-learn's LULC codes. The model predicts the four classes that
occur in the training part (:data:`CLASSES`). *Cultivated land* (11 px, all of them in the
held-out part) cannot be learned from the training part: its pixels are ignored in training
and evaluation like the reference's no-data pixels (0), which is stated on the model card.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os

import numpy as np

from engine.preprocessing.dates import find_slice_date

from .sample_data import DEFAULT_OUT, LULC_CLASSES, S2_BANDS, sample_s2_paths

#: Model classes: (id, name, colour, eo-learn code). Colours are eo-learn's.
CLASSES = [
    {"id": i, "name": LULC_CLASSES[code][0], "color": LULC_CLASSES[code][1], "code": code}
    for i, code in enumerate((2, 3, 4, 8))
]
IGNORE = -1
TRAIN_COLS = (0, 56)
BUFFER_COLS = (56, 68)
HELDOUT_COLS = (68, 100)


@dataclasses.dataclass
class SloveniaSample:
    """The sample on its 10 m grid (H = 101 rows, W = 100 columns).

    Attributes:
        s2: float32 [T=5, C=10, H, W] digital numbers (reflectance x 10000), bands S2_BANDS.
        dates: the acquisition dates, [T], sorted.
        dem: float32 [1, 1, H, W] elevation in metres (a single-date modality).
        target: int64 [H, W] model class id, IGNORE where no usable label.
        codes: uint8 [H, W] the reference's eo-learn codes as stored.
    """

    s2: np.ndarray
    dates: list[dt.date]
    dem: np.ndarray
    target: np.ndarray
    codes: np.ndarray


def codes_to_target(codes: np.ndarray) -> np.ndarray:
    """eo-learn codes -> model class ids (IGNORE for no data and classes the model lacks)."""
    lut = np.full(256, IGNORE, dtype=np.int64)
    for c in CLASSES:
        lut[c["code"]] = c["id"]
    return lut[codes.astype(np.uint8)]


def _read_date(path: str) -> dt.date:
    """The date the engine reads for ``path`` (engine.preprocessing.dates)."""
    found = find_slice_date(path)
    if found is None:
        raise ValueError(f"{path}: no acquisition date in its tags or name")
    return found.when.date()


def load_sample(sample_dir: str = DEFAULT_OUT) -> SloveniaSample:
    """Read the bundled GeoTIFFs."""
    import rasterio

    scenes, dates = [], []
    for path in sample_s2_paths(sample_dir):
        with rasterio.open(path) as ds:
            if list(ds.descriptions) != S2_BANDS:
                raise ValueError(f"{path}: bands {ds.descriptions}, expected {S2_BANDS}")
            scenes.append(ds.read().astype(np.float32))
        dates.append(_read_date(path))
    with rasterio.open(os.path.join(sample_dir, "dem.tif")) as ds:
        dem = ds.read(1).astype(np.float32)[None, None]
    with rasterio.open(os.path.join(sample_dir, "lulc_reference.tif")) as ds:
        codes = ds.read(1)
    return SloveniaSample(s2=np.stack(scenes), dates=dates, dem=dem,
                          target=codes_to_target(codes), codes=codes)


def split_mask(shape: tuple[int, int], part: str) -> np.ndarray:
    """Boolean [H, W]: True in the columns of ``part`` (train, buffer or heldout)."""
    c0, c1 = {"train": TRAIN_COLS, "buffer": BUFFER_COLS, "heldout": HELDOUT_COLS}[part]
    mask = np.zeros(shape, dtype=bool)
    mask[:, c0:c1] = True
    return mask


def sparse_labels(target: np.ndarray, cols: tuple[int, int], fraction: float,
                  seed: int, min_per_class: int = 5) -> np.ndarray:
    """A copy of ``target`` [H, W] that keeps, inside columns ``cols``, a random ``fraction``
    of each class's labelled pixels (at least ``min_per_class`` or all it has) and sets the
    rest to IGNORE: the point labels an analyst digitises instead of a dense map. Pixels
    outside ``cols`` are kept unchanged. ``fraction`` 1 returns the target unchanged."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    out = target.copy()
    if fraction == 1.0:
        return out
    rng = np.random.default_rng(seed)
    part = out[:, cols[0]:cols[1]]                     # a view: edits land in ``out``
    keep = np.zeros(part.shape, dtype=bool)
    for k in np.unique(part[part >= 0]):
        rows, columns = np.nonzero(part == k)
        n = min(len(rows), max(min_per_class, int(round(fraction * len(rows)))))
        pick = rng.choice(len(rows), size=n, replace=False)
        keep[rows[pick], columns[pick]] = True
    part[~keep] = IGNORE
    return out


# ------------------------------------------------------------------------------ metrics
def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix [K, K] (rows = reference, columns = prediction) over pixels whose
    target is a class id (IGNORE skipped)."""
    ok = target >= 0
    idx = target[ok].astype(np.int64) * num_classes + pred[ok].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores(conf: np.ndarray, names: list[str] | None = None) -> dict:
    """OA, per-class IoU and mIoU over the classes present in the reference (support > 0),
    as MAESTRO's MonoLabelMetric averages (official: maestro/train/metric.py)."""
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    support = conf.sum(1)
    union = support + conf.sum(0) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    names = names or [c["name"] for c in CLASSES]
    present = support > 0
    return {
        "overall_accuracy": float(tp.sum() / conf.sum()),
        "miou": float(iou[present].mean()),
        "iou": {n: (float(iou[i]) if present[i] else None) for i, n in enumerate(names)},
        "support_px": {n: int(support[i]) for i, n in enumerate(names)},
        "pixels": int(conf.sum()),
    }


def heldout_scores(pred: np.ndarray, target: np.ndarray) -> dict:
    """Scores of a full-raster prediction ``pred`` [H, W] (class ids) on the held-out columns."""
    mask = split_mask(target.shape, "heldout")
    tgt = np.where(mask, target, IGNORE)
    return scores(confusion(pred, tgt, len(CLASSES)))


def heldout_bounds(sample_dir: str = DEFAULT_OUT) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the held-out columns in the sample's CRS."""
    import rasterio

    with rasterio.open(os.path.join(sample_dir, "lulc_reference.tif")) as ds:
        t, h = ds.transform, ds.height
    x0, y0 = t * (HELDOUT_COLS[0], 0)
    x1, y1 = t * (HELDOUT_COLS[1], h)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


if __name__ == "__main__":
    # `python -m training.recipes.slovenia heldout-bounds`: for scripts/demo.sh.
    import sys

    if sys.argv[1:] != ["heldout-bounds"]:
        sys.exit("usage: python -m training.recipes.slovenia heldout-bounds")
    print(",".join(f"{v:.3f}" for v in heldout_bounds()))
