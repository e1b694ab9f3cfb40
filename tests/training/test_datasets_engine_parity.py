"""One preprocessing: the same real GeoTIFFs (the bundled sample rewritten by rasterio with
nodata: a 4 px frame on every S2 date, a 40 x 40 px block in one date, one band missing at
some pixels, a DEM hole; then also with the bands reordered and a GDAL offset) give
bit-identical model inputs through training's GeoTiffStack and through the engine's
Runner._prepare (pixels, dates, masks, ref_date)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from engine.align import SliceReader, model_grid
from engine.api import RunOptions
from engine.contract import build_metadata
from engine.runner import Runner
from engine.stack import reference_date
from engine.tiling import TileGrid
from training.datasets.geotiff_stack import GeoTiffStack
from training.recipes.sample_data import DEFAULT_OUT, S2_BANDS, sample_s2_paths

TILE, PATCH = 16, 4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import rasterio

    out = tmp_path_factory.mktemp("parity")
    for k, src_path in enumerate(sample_s2_paths(DEFAULT_OUT)):
        with rasterio.open(src_path) as src:
            data, prof, tags = src.read(), src.profile, src.tags()
            names = src.descriptions
        data[:, :4], data[:, -4:], data[:, :, :4], data[:, :, -4:] = 0, 0, 0, 0   # frame
        if k == 2:
            data[:, 30:70, 20:60] = 0                                     # a cloud hole
        if k == 0:
            data[3, 50:53, 70:90] = 0                                     # one band missing
        with rasterio.open(out / os.path.basename(src_path), "w", **prof) as dst:
            dst.write(data)
            dst.update_tags(**tags)
            for b, name in enumerate(names, 1):
                dst.set_band_description(b, name)
    with rasterio.open(os.path.join(DEFAULT_OUT, "dem.tif")) as src:
        dem, prof = src.read(), src.profile
    dem[0, 60:75, 5:33] = prof["nodata"]
    with rasterio.open(out / "dem.tif", "w", **prof) as dst:
        dst.write(dem)
    return str(out)


def _dataset(root, patch):
    mods = [dict(name="s2", files="S2_L1C_*.tif", bands=S2_BANDS, divisor=5000.0, num_dates=5),
            dict(name="dem", files="dem.tif", bands=["elevation"], divisor=1000.0)]
    return GeoTiffStack(root, mods, "s2", TILE, stride=TILE,
                        patch_px={"s2": PATCH, "dem": PATCH} if patch else None)


def _engine_batch(root, ds, tiles, token_masks):
    infos = ds.info()
    meta = build_metadata(
        name="parity", task="segmentation", reference_modality="s2",
        modalities=[i.contract(PATCH) for i in infos],
        classes=[{"id": 0, "name": "a", "color": "#000000"},
                 {"id": 1, "name": "b", "color": "#ffffff"}],
        provenance={"training_data": "test", "licence": "MIT", "metrics": {}})
    inputs = {"s2": sorted(os.path.join(root, f) for f in os.listdir(root) if f.startswith("S2")),
              "dem": [os.path.join(root, "dem.tif")]}
    runner = Runner("unused.onnx", inputs, os.path.join(root, "out.tif"), RunOptions())
    stacks = runner._collect(meta)
    # contract version 2 feeding (token masks, hour 0) or version 1
    runner._set_dates(meta, stacks, reference_date(meta, stacks), token_masks)
    ref = stacks["s2"][0]
    tg = TileGrid.build(ref.width, ref.height, TILE, 0, 1)
    grids = {m.name: model_grid(ref.crs, ref.transform, tg.padded_width, tg.padded_height, TILE,
                                m.tile_px) for m in meta.modalities}
    readers = {m.name: [SliceReader(s, grids[m.name]) for s in stacks[m.name]]
               for m in meta.modalities}
    try:
        return runner._prepare(tiles, meta, readers, grids)
    finally:
        for rs in readers.values():
            for r in rs:
                r.close()


def test_training_items_equal_engine_inputs_bit_for_bit(files):
    ds = _dataset(files, patch=True)
    tiles = list(ds.grid)
    prepared = _engine_batch(files, ds, tiles, token_masks=True)
    assert prepared.run == list(range(len(tiles)))          # every tile has valid data
    feeds = prepared.feeds
    assert feeds["s2_mask"].shape == (len(tiles), 5, (TILE // PATCH) ** 2)
    n_missing = n_with_nodata = 0
    for j, index in enumerate(prepared.run):
        item = ds[index]
        for key in ("s2", "s2_dates", "s2_mask", "dem", "dem_dates", "dem_mask"):
            a, b = feeds[key][j], item[key].numpy()
            assert a.dtype == b.dtype and a.shape == b.shape, key
            assert np.array_equal(a, b), f"{key} differs for tile {tiles[index]}"
            assert a.tobytes() == b.tobytes(), key               # bit for bit (signed zeros)
        assert np.array_equal(feeds["ref_date"][j], item["ref_date"].numpy())
        n_missing += int(item["s2_mask"].sum())
        n_with_nodata += int(np.isnan(_raw_tile(ds, index)).any(axis=(1,)).reshape(5, 4, 4, 4, 4)
                         .swapaxes(2, 3).reshape(5, 16, 16).any(-1).sum())
    assert feeds["s2_dates"][0, :, 2].tolist() == [0] * 5       # hour 0 for both
    assert n_missing > 0 and n_with_nodata > n_missing   # some tokens missing, some partial


def _raw_tile(ds, index):
    """Raw S2 pixels of a grid tile as the dataset reads them (NaN = nodata)."""
    import rasterio

    r, c = ds.grid[index]
    bounds = rasterio.windows.bounds(rasterio.windows.Window(c, r, TILE, TILE), ds.ref_transform)
    return np.stack([ds._read(p, bounds, TILE, None, "nearest") for p in ds.files["s2"].paths])


def test_version1_pixels_equal_too(files):
    """Without a patch (contract version 1) both zero-fill nodata: same pixels."""
    ds = _dataset(files, patch=False)
    tiles = list(ds.grid)
    prepared = _engine_batch(files, ds, tiles, token_masks=False)
    assert prepared.feeds["s2_mask"].shape == (len(prepared.run), 5)
    for j, index in enumerate(prepared.run):
        item = ds[index]
        for key in ("s2", "dem"):
            assert prepared.feeds[key][j].tobytes() == item[key].numpy().tobytes(), key


def test_random_flips_move_token_masks_with_pixels(files):
    import torch

    from training.datasets.collate import collate

    ds = GeoTiffStack(files, [dict(name="s2", files="S2_L1C_*.tif", bands=S2_BANDS,
                                   divisor=5000.0, num_dates=6)], "s2", TILE, train=True,
                      samples_per_epoch=24, patch_px={"s2": PATCH})
    torch.manual_seed(3)
    items = [ds[i] for i in range(len(ds))]
    seen = 0
    for item in items:
        x, mask = item["s2"].numpy(), item["s2_mask"].numpy()           # [6, C, 16, 16], [6, 16]
        tokens = x.reshape(6, 10, 4, PATCH, 4, PATCH).transpose(0, 2, 4, 1, 3, 5).reshape(6, 16, -1)
        empty = (tokens == 0).all(-1)                                    # fill value 0
        assert np.array_equal(empty, mask), "a token mask did not follow its pixels"
        assert mask[5].all()                                             # the padded 6th slot
        seen += int(mask[:5].sum())
    assert seen > 0                                                      # frames were drawn
    batch = collate(items[:4])
    assert batch["s2_mask"].shape == (4, 6, 16)


def test_collate_pads_token_masks():
    import torch

    from training.datasets.base import series_item
    from training.datasets.collate import collate

    a = series_item("s2", np.ones((2, 3, 8, 8), np.float32), np.ones((2, 3)), 2, patch_px=4)
    b = series_item("s2", np.ones((3, 3, 8, 8), np.float32), np.ones((3, 3)), 3, patch_px=4)
    batch = collate([a, b])
    assert batch["s2_mask"].shape == (2, 3, 4)
    assert batch["s2_mask"][0, 2].all() and not batch["s2_mask"][0, :2].any()
    assert batch["s2_mask"].dtype == torch.bool


@pytest.fixture(scope="module")
def shuffled(files, tmp_path_factory):
    """The same files with the bands stored in reverse order (band descriptions say so) and
    as DN + 1000 with a declared GDAL offset of -1000 (the L2A convention since baseline
    04.00)."""
    import rasterio

    out = tmp_path_factory.mktemp("shuffled")
    for name in sorted(os.listdir(files)):
        if not name.startswith("S2"):
            shutil.copy(os.path.join(files, name), out / name)
            continue
        with rasterio.open(os.path.join(files, name)) as src:
            data, prof, tags, names = src.read(), src.profile, src.tags(), src.descriptions
        stored = np.where(data == 0, 0, data + 1000).astype(data.dtype)[::-1]
        with rasterio.open(out / name, "w", **prof) as dst:
            dst.write(stored)
            dst.update_tags(**tags)
            for b, n in enumerate(names[::-1], 1):
                dst.set_band_description(b, n)
            dst.offsets = (-1000.0,) * len(names)
    return str(out)


def test_band_order_and_offset_go_through_the_engines_read_plan(files, shuffled):
    plain, moved = _dataset(files, patch=True), _dataset(shuffled, patch=True)
    tiles = list(moved.grid)
    prepared = _engine_batch(shuffled, moved, tiles, token_masks=True)
    for j, index in enumerate(prepared.run):
        a, b = moved[index], plain[index]
        assert prepared.feeds["s2"][j].tobytes() == a["s2"].numpy().tobytes()
        assert np.array_equal(a["s2"].numpy(), b["s2"].numpy())       # bands found, offset applied
        assert np.array_equal(a["s2_mask"].numpy(), b["s2_mask"].numpy())
