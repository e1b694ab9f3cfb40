"""Per-pixel classical baseline: a random forest on the same bands, dates and DEM as the model.

Features per pixel: the 10 Sentinel-2 bands of each of the 5 dates as reflectance
(DN / 10000, 50 values) and the elevation in metres (1 value). Trained on every labelled
pixel of the training columns, evaluated on the held-out columns with the same metrics as
the networks (``training.recipes.slovenia``).

``python -m training.baselines.random_forest`` prints its held-out scores as JSON.
"""
from __future__ import annotations

import json

import numpy as np

from training.recipes.slovenia import (IGNORE, SloveniaSample, heldout_scores, load_sample,
                                       split_mask)

#: scikit-learn settings (fixed seed; one job: the recipe must run on 2 shared cores).
RF_PARAMS = {"n_estimators": 200, "random_state": 0, "n_jobs": 1}


def pixel_features(sample: SloveniaSample) -> np.ndarray:
    """float32 [H * W, T * C + 1]: reflectance of every band and date, then elevation (m)."""
    t, c, h, w = sample.s2.shape
    s2 = (sample.s2 / 10000.0).reshape(t * c, h * w).T
    dem = sample.dem.reshape(1, h * w).T
    return np.concatenate([s2, dem], axis=1).astype(np.float32)


def run(sample: SloveniaSample | None = None, params: dict | None = None) -> dict:
    """Fit on the training columns; returns ``{"heldout": scores, "params": ...}`` and the
    full-raster prediction under ``"prediction"`` (int [H, W])."""
    from sklearn.ensemble import RandomForestClassifier

    sample = sample or load_sample()
    params = {**RF_PARAMS, **(params or {})}
    feats = pixel_features(sample)
    target = sample.target.reshape(-1)
    train = split_mask(sample.target.shape, "train").reshape(-1) & (target != IGNORE)
    forest = RandomForestClassifier(**params).fit(feats[train], target[train])
    pred = forest.predict(feats).reshape(sample.target.shape)
    return {"heldout": heldout_scores(pred, sample.target), "params": params,
            "train_pixels": int(train.sum()), "prediction": pred}


if __name__ == "__main__":
    result = run()
    result.pop("prediction")
    print(json.dumps(result, indent=1))
