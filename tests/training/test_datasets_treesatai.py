"""TreeSatAI-TS reader on the real samples (shared/data/treesatai-ts-samples)."""
import csv
import os

import h5py
import numpy as np
import pytest
import rasterio
import torch

from tests.conftest import SHARED
from training.datasets.collate import collate
from engine.preprocessing.dates import product_date
from training.datasets.treesatai import CLASSES, TreeSatAITS

ROOT = os.path.join(SHARED, "data", "treesatai-ts-samples")


def test_items_match_the_files_scaled_as_officially():
    ds = TreeSatAITS(ROOT, "test")
    item = ds[0]
    with open(os.path.join(ROOT, "test.csv")) as f:
        row = next(csv.DictReader(f))
    # Class order is the CSV's column order; label = area fraction > 0.07.
    expected = [float(row[c]) > 0.07 for c in CLASSES]
    assert item["target"].tolist() == [float(e) for e in expected]
    assert item["target"].sum() >= 1
    # Aerial: the centre 300 px of the 304 px file, /255, file band order.
    with rasterio.open(os.path.join(ROOT, "aerial", row["aerial_name"])) as src:
        raw = src.read()
    assert item["aerial"].shape == (1, 4, 300, 300)
    np.testing.assert_allclose(item["aerial"][0].numpy(), raw[:, 2:302, 2:302] / 255.0, rtol=1e-6)
    # S2: 16 dates, each an actual date of the file, /5000, increasing dates.
    with h5py.File(os.path.join(ROOT, "sentinel-ts", row["sen_name"])) as h5:
        s2 = h5["sen-2-data"][()]
        dates = [product_date(p) for p in h5["sen-2-products"][()]]
        masks = h5["sen-2-masks"][()]
    assert item["s2"].shape == (16, 10, 6, 6) and item["s2_dates"].dtype == torch.int32
    assert not item["s2_mask"].any()
    for t in range(16):
        year, doy, hour = item["s2_dates"][t].tolist()
        hits = [i for i, d in enumerate(dates)
                if (d.year, d.timetuple().tm_yday) == (year, doy)]
        assert hits, f"date {year}-{doy} is not in the file"
        assert any(np.allclose(s2[i] / 5000.0, item["s2"][t].numpy(), rtol=1e-5) for i in hits)
    doys = item["s2_dates"][:, 1] + 366 * (item["s2_dates"][:, 0] - 2000)
    assert (doys[1:] > doys[:-1]).all()
    # Eval picks cloud-free dates where the bin has one.
    k = len(dates) // 16
    cloudy = (masks.reshape(len(dates), -1) > 0).any(1)
    for b in range(16):
        if not cloudy[b * k:(b + 1) * k].all():
            year, doy, _ = item["s2_dates"][b].tolist()
            i = [j for j in range(b * k, (b + 1) * k)
                 if (dates[j].year, dates[j].timetuple().tm_yday) == (year, doy)]
            assert any(not cloudy[j] for j in i)
    # S1: log then /5, 4 dates, no NaN left.
    assert item["s1_desc"].shape == (4, 2, 6, 6) and torch.isfinite(item["s1_desc"]).all()
    assert tuple(item["ref_date"].tolist()) == (2014, 182, 0)


def test_nan_sentinel1_dates_are_avoided():
    # Betula_spec._1_15679 holds NaNs in sen-1-des-data (official fixture).
    ds = TreeSatAITS(ROOT, "val", modalities=["s1_desc"])
    names = [r["sen"] for r in ds.rows]
    idx = names.index("Betula_spec._1_15679_WEFL_NLF_2019.h5")
    with h5py.File(os.path.join(ROOT, "sentinel-ts", names[idx])) as h5:
        raw = h5["sen-1-des-data"][()]
    assert np.isnan(raw).any()
    item = ds[idx]
    assert torch.isfinite(item["s1_desc"]).all()
    picked = item["s1_desc"].numpy() * 5.0
    finite = [np.log(np.maximum(raw[i], 1e-10)) for i in range(len(raw))
              if np.isfinite(raw[i]).all()]
    for t in range(4):
        assert any(np.allclose(picked[t], f, atol=1e-5) for f in finite)


def test_training_items_are_random_and_collate():
    torch.manual_seed(0)
    ds = TreeSatAITS(ROOT, ["train", "val"], train=True)
    assert len(ds) == 4
    a, b = ds[0], ds[0]
    assert not torch.equal(a["s2_dates"], b["s2_dates"]) or not torch.equal(a["aerial"],
                                                                           b["aerial"])
    batch = collate([ds[i] for i in range(4)])
    assert batch["s2"].shape == (4, 16, 10, 6, 6)
    assert batch["target"].shape == (4, 15) and batch["ref_date"].shape == (4, 3)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="split file"):
        TreeSatAITS(str(tmp_path), "train")
    with pytest.raises(ValueError, match="no modality"):
        TreeSatAITS(ROOT, "train", modalities=["dem"])
