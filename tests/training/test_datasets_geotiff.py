"""Generic GeoTIFF stacks on the real Slovenia patch written as GeoTIFFs (one per date)."""
import numpy as np
import pytest
import torch

from training.datasets.collate import collate
from training.datasets.geotiff_stack import GeoTiffStack
from training.datasets.slovenia import CLASSES, S2_L1C_BANDS, SOURCE, write_slovenia_stack


@pytest.fixture(scope="module")
def slovenia(tmp_path_factory):
    out = tmp_path_factory.mktemp("slovenia")
    write_slovenia_stack(str(out))
    return str(out)


def _mods(ndvi=False):
    mods = [dict(name="s2", files="s2/*.tif", bands=S2_L1C_BANDS, divisor=0.5, num_dates=5),
            dict(name="dem", files="dem.tif", bands=["elevation"], divisor=1000.0)]
    if ndvi:
        mods.append(dict(name="ndvi", files="ndvi/*.tif", bands=["NDVI"], num_dates=8,
                         cloud_masks="clouds/*.tif", mask_threshold=0))
    return mods


def test_grid_crops_match_the_source_arrays(slovenia):
    ds = GeoTiffStack(slovenia, _mods(), "s2", 32, labels="lulc.tif", classes=CLASSES,
                      region={"cols": [64, 100]})
    # 101 rows x 36 cols: row starts 0, 32, 64, 69; col starts 64, 68.
    assert ds.grid == [(r, c) for r in (0, 32, 64, 69) for c in (64, 68)]
    item = ds[3]                                              # rows 32-63, cols 68-99
    scenes = np.load(f"{SOURCE}/s2_l1c_reference_scenes.npy")
    order = np.argsort([2, 1, 4, 3, 0])                       # scenes sorted by date
    want = np.moveaxis(scenes[order][:, 32:64, 68:100], -1, 1) / 0.5
    np.testing.assert_allclose(item["s2"].numpy(), want, rtol=1e-6)
    assert [tuple(d) for d in item["s2_dates"].tolist()] == [
        (2015, 192, 0), (2015, 212, 0), (2015, 232, 0), (2015, 242, 0), (2015, 252, 0)]
    lulc = np.load(f"{SOURCE}/lulc.npy")[32:64, 68:100, 0]
    lut = {c["value"]: i for i, c in enumerate(CLASSES)}
    want_t = np.vectorize(lambda v: lut.get(int(v), -1))(lulc)
    assert torch.equal(item["target"], torch.from_numpy(want_t.astype(np.int64)))
    dem = np.load(f"{SOURCE}/dem.npy")[32:64, 68:100, 0]
    np.testing.assert_allclose(item["dem"][0, 0].numpy(), dem / 1000.0, rtol=1e-6)
    assert tuple(item["ref_date"].tolist()) == (2015, 192, 0)


def test_cloud_masks_steer_the_date_choice(slovenia):
    ds = GeoTiffStack(slovenia, _mods(ndvi=True), "s2", 16, region={"rows": [0, 16],
                                                                    "cols": [0, 16]})
    item = ds[0]
    cm = np.load(f"{SOURCE}/cloud_mask.npy")[:, 0:16, 0:16, 0]
    cloudy = cm.reshape(68, -1).any(1)
    import json
    with open(f"{SOURCE}/timestamps.json") as f:
        import datetime as dt
        stamps = [dt.datetime.fromisoformat(s) for s in json.load(f)]
    k = 68 // 8
    assert all(d[2] == 0 for d in item["ndvi_dates"].tolist())        # hour 0 rule
    picked = []                    # the timestamp of each picked day (two share 2015-12-08)
    for b, d in enumerate(item["ndvi_dates"].tolist()):
        same_day = [i for i, s in enumerate(stamps) if (s.year, s.timetuple().tm_yday) ==
                    tuple(d[:2])]
        picked.append(next((i for i in same_day if b * k <= i < (b + 1) * k), same_day[0]))
    for b, i in enumerate(picked):
        assert b * k <= i < (b + 1) * k
        if not cloudy[b * k:(b + 1) * k].all():
            assert not cloudy[i], f"bin {b}: cloudy date {i} picked although clear ones exist"


def test_random_training_crops_stay_in_region_and_collate(slovenia):
    torch.manual_seed(0)
    ds = GeoTiffStack(slovenia, _mods(), "s2", 16, labels="lulc.tif", classes=CLASSES,
                      region={"cols": [0, 64]}, train=True, samples_per_epoch=6)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["s2"].shape == (6, 5, 13, 16, 16) and batch["target"].shape == (6, 16, 16)
    assert batch["s2_mask"].dtype == torch.bool and not batch["s2_mask"].any()
    # Short series are padded with masked slots.
    mods = _mods()
    mods[0]["num_dates"] = 7
    item = GeoTiffStack(slovenia, mods, "s2", 16)[0]
    assert item["s2"].shape[0] == 7 and item["s2_mask"].tolist() == [False] * 5 + [True] * 2


def test_bad_regions_and_globs_are_named(slovenia):
    with pytest.raises(ValueError, match="narrower than tile_px"):
        GeoTiffStack(slovenia, _mods(), "s2", 32, region={"cols": [80, 100]})
    with pytest.raises(FileNotFoundError, match="no file matches"):
        GeoTiffStack(slovenia, [dict(name="s2", files="nope/*.tif", bands=["a"])], "s2", 8)
    from engine.errors import InputError

    with pytest.raises(InputError, match=r"names its bands B01.*none of them is one the model "
                                         r"takes \(the model needs a;"):   # the engine's band plan
        GeoTiffStack(slovenia, [dict(name="s2", files="s2/*.tif", bands=["a"])], "s2", 8)


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:32634"])
def test_undeclared_dem_void_is_not_blended_when_resampled(slovenia, tmp_path, crs):
    """The real DEM at 30 m (or warped to UTM 34N) with a block of -32768 and no nodata
    declared, read bilinearly onto the 10 m grid: no elevation outside the real DEM's range
    (a blend of the void with its neighbours), and the void's pixels are missing tokens.
    Before the masked read: blended values down to about -1000 m appeared next to the void."""
    import os

    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    root = tmp_path / "stack"
    root.mkdir()
    os.symlink(os.path.join(slovenia, "s2"), root / "s2")
    with rasterio.open(os.path.join(slovenia, "dem.tif")) as src:
        dem10, t10, crs0 = src.read(1), src.transform, src.crs
    lo, hi = float(dem10.min()), float(dem10.max())
    dem30 = dem10[::3, ::3].astype(np.float32).copy()
    t30 = t10 * t10.scale(3)
    if crs != "EPSG:32633":
        h, w = dem30.shape
        bounds = rasterio.transform.array_bounds(h, w, t30)
        t_out, w2, h2 = calculate_default_transform(crs0, crs, w, h, *bounds, resolution=30)
        warped = np.full((h2, w2), np.nan, np.float32)
        reproject(dem30, warped, src_transform=t30, src_crs=crs0, dst_transform=t_out,
                  dst_crs=crs, resampling=Resampling.bilinear, dst_nodata=np.nan)
        dem30, t30 = np.where(np.isfinite(warped), warped, float(np.nanmean(warped))), t_out
    r, c = dem30.shape[0] // 2, dem30.shape[1] // 2
    dem30[r - 4:r + 4, c - 4:c + 4] = -32768                # the void, undeclared
    with rasterio.open(root / "dem.tif", "w", driver="GTiff", width=dem30.shape[1],
                       height=dem30.shape[0], count=1, dtype="float32", crs=crs,
                       transform=t30) as dst:
        dst.write(dem30[None])
    mods = [dict(name="s2", files="s2/*.tif", bands=S2_L1C_BANDS, divisor=0.5, num_dates=5),
            dict(name="dem", files="dem.tif", bands=["elevation"], divisor=1000.0,
                 resampling="bilinear")]
    ds = GeoTiffStack(str(root), mods, "s2", 48, patch_px={"s2": 4, "dem": 4})
    masked_tokens = 0
    for i in range(len(ds)):
        item = ds[i]
        dem = item["dem"].numpy()[0, 0] * 1000.0             # metres [16, 16] at 30 m
        g = dem.shape[0] // 4                                 # 4 x 4 tokens of 4 px
        tokens = dem.reshape(g, 4, g, 4).swapaxes(1, 2).reshape(g * g, 16)
        seen = tokens[~item["dem_mask"].numpy()[0]]           # tokens the model sees
        assert seen.min() >= lo - 5 and seen.max() <= hi + 5, (i, seen.min(), seen.max())
        masked_tokens += int(item["dem_mask"].sum())
    assert masked_tokens > 0                                  # the void is missing, not blended
