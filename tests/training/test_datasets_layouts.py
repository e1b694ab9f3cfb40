"""PASTIS-HD and FLAIR-HUB readers on small fixtures written in their published layouts,
and the date selection."""
import numpy as np
import pytest
import torch

from tests.training.layouts import write_flair, write_pastis
from training.datasets.flair import FlairHub
from training.datasets.pastis import PastisHD
from training.datasets.selection import select_dates


def test_pastis_crops_grid_scaling_and_void(tmp_path):
    truth = write_pastis(str(tmp_path))
    ds = PastisHD(str(tmp_path), "val")
    assert len(ds) == 64                                  # 8 x 8 crops of 160 m
    item = ds[9]                                          # crop row 1, col 1
    assert item["s2"].shape == (16, 10, 16, 16) and item["spot"].shape == (1, 3, 160, 160)
    assert item["s1_asc"].shape == (4, 2, 16, 16)
    t = truth[10002]
    np.testing.assert_allclose(item["spot"][0].numpy(), t["spot"][:, 160:320, 160:320] / 255.0,
                               rtol=1e-6)
    ref = t["target"][16:32, 16:32].astype(np.int64)
    ref[ref == 19] = -1
    assert torch.equal(item["target"], torch.from_numpy(ref))
    # 20 dates in 16 bins of 1: values (i+1)*100 / 10000, dates 9 days apart from 2018-09-01.
    vals = item["s2"][:, 0, 0, 0].numpy() * 10000
    idx = np.round(vals / 100).astype(int) - 1
    assert (np.diff(idx) > 0).all() and idx.min() >= 0 and idx.max() <= 19
    assert tuple(item["ref_date"].tolist()) == (2019, 182, 0)
    # Folds from the metadata instead of split files.
    assert len(PastisHD(str(tmp_path), folds=[1, 2], repeats=2)) == 8


def test_flair_layout_dates_clouds_and_labels(tmp_path):
    truth = write_flair(str(tmp_path), t_s2=20, cloudy=(0, 1, 2, 3, 4))
    ds = FlairHub(str(tmp_path), "train", num_dates={"s2": 4})
    item = ds[1]
    pid = ds.ids[1]
    assert item["aerial"].shape == (1, 4, 512, 512) and item["dem"].shape == (1, 2, 512, 512)
    rgbi = truth[pid]["rgbi"]
    # File R,G,B,NIR -> NIR,R,G,B, /255.
    np.testing.assert_allclose(item["aerial"][0].numpy(), rgbi[[3, 0, 1, 2]] / 255.0, rtol=1e-6)
    lab = truth[pid]["label"].astype(np.int64)
    lab[lab >= 15] = -1
    assert torch.equal(item["target"], torch.from_numpy(lab))
    # 20 dates, 4 bins of 5: the first bin is all cloudy, so its pick may be cloudy; the
    # others hold clear dates only. Eval takes the date closest to the bin median.
    idx = np.round(item["s2"][:, 0, 0, 0].numpy() * 5000 / 100).astype(int) - 1
    assert list(idx[1:]) == [7, 12, 17]
    assert item["s2_dates"][0].tolist()[0] == 2021
    assert item["s1_asc"].shape == (4, 2, 10, 10) and tuple(item["ref_date"].tolist()) == (
        2021, 166, 0)
    # Clouds only in dates 5 and 6 of the second bin: the bin median avoids them.
    ds2 = FlairHub(str(_fresh(tmp_path, cloudy=(7,))), "train", ["s2"], {"s2": 4})
    idx2 = np.round(ds2[0]["s2"][:, 0, 0, 0].numpy() * 5000 / 100).astype(int) - 1
    assert 7 not in idx2


def _fresh(tmp_path, cloudy):
    root = tmp_path / f"c{len(cloudy)}"
    write_flair(str(root), t_s2=20, cloudy=cloudy)
    return root


def test_flair_missing_file_is_named(tmp_path):
    write_flair(str(tmp_path))
    (tmp_path / "val.csv").write_text("patch_id\nD004-2021_AA-S1-32_9-9\n")
    ds = FlairHub(str(tmp_path), "val", ["aerial"])
    with pytest.raises((FileNotFoundError, KeyError), match="9-9"):
        ds[0]


def test_select_dates_bins_clouds_and_random():
    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 2, 3, 3))
    # Eval: 10 dates, 3 bins of 3 from offset 0 -> median of each bin.
    assert select_dates(images, 3, None).tolist() == [1, 4, 7]
    cloudy = np.zeros(10, bool)
    cloudy[[1, 4, 5]] = True
    picked = select_dates(images, 3, None, cloudy)
    assert picked[0] in (0, 2) and picked[1] == 3 and picked[2] == 7
    cloudy[[6, 7, 8]] = True
    assert select_dates(images, 3, None, cloudy)[2] == 7      # all-cloudy bin: clouds ignored
    rng = np.random.default_rng(0)
    draws = {tuple(select_dates(images, 3, rng)) for _ in range(30)}
    assert len(draws) > 5
    assert select_dates(images[:2], 3, None).tolist() == [0, 1]   # short series kept whole
    nan = images.copy()
    nan[4, 0, 0, 0] = np.nan
    assert select_dates(nan, 3, None)[1] != 4
