"""The runner's feeding by contract version, on real GeoTIFFs (Slovenia S2 + DEM) and tiny
models exported by our training code: version 2 leaves tokens without data out (their pixel
values never matter; a crop smaller than a tile is a tile with its padding masked), version 1
zero-fills as before and says so in the log."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio

from engine.api import RunOptions, run_model
from engine.contract import parse_metadata, read_model_metadata
from tests.engine.conftest import SCENE_DATES, downsample2, run_session

T, P = 16, 4                       # tiny model: S2 tile 16 px, patch 4 px; DEM tile 8, patch 2
ORDER = np.argsort(SCENE_DATES)


def _doy(iso):
    return dt.date.fromisoformat(iso).timetuple().tm_yday


def clean_feeds(slovenia, tiles, rows, cols, token_masks=True):
    """Contract inputs of tiles (r, c) of an aligned crop from the arrays, nothing masked;
    tiles reaching past the crop get random garbage there."""
    rng = np.random.default_rng(5)
    s2 = rng.uniform(-3, 3, size=(5, 10, rows + T, cols + T)).astype("float32")
    s2[:, :, :rows, :cols] = slovenia["s2"][ORDER][:, :, :rows, :cols] / np.float32(5000.0)
    dem = rng.uniform(-3, 3, size=((rows + T) // 2, (cols + T) // 2)).astype("float32")
    d = ((downsample2(slovenia["dem"][:rows, :cols]) - 500.0) / 300.0).astype("float32")
    dem[:d.shape[0], :d.shape[1]] = d
    b = len(tiles)
    dates = np.array([[2015, _doy(SCENE_DATES[i]), 0] for i in ORDER], dtype="int32")
    return {
        "s2": np.stack([s2[:, :, r:r + T, c:c + T] for r, c in tiles]),
        "s2_dates": np.repeat(dates[None], b, 0),
        "s2_mask": np.zeros((b, 5, (T // P) ** 2) if token_masks else (b, 5), bool),
        "dem": np.stack([dem[None, None, r // 2:r // 2 + 8, c // 2:c // 2 + 8] for r, c in tiles]),
        "dem_dates": np.repeat(dates[:1][None], b, 0),
        "dem_mask": np.zeros((b, 1, 16) if token_masks else (b, 1), bool),
        "ref_date": np.repeat(dates[:1], b, 0),
    }


def _confidence(logits):
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).max(0)


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def _frame(width):
    def edit(i, data):
        data[:, :width], data[:, -width:] = 0, 0            # S2 nodata value
        data[:, :, :width], data[:, :, -width:] = 0, 0
    return edit


def test_v2_frame_tokens_are_left_out(tiny_models, scene, slovenia, tmp_path):
    """A 4 px nodata frame on every S2 date: interior predictions equal a direct run on the
    clean data with the frame's tokens masked (their clean values differ from the engine's
    fill, so equality shows they never reach the model)."""
    assert read_model_metadata(tiny_models["segmentation"]).schema_version == 2
    rows = cols = 32
    inputs = scene(rows=rows, cols=cols, s2_edit=_frame(4))
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    lines = []
    run_model(tiny_models["segmentation"], inputs, out,
              RunOptions(tile_overlap_pct=0, confidence_path=conf), log=lines.append)
    assert not any("contract version 1" in m for m in lines)
    classes, confidence = _read(out), _read(conf)
    frame = np.ones((rows, cols), bool)
    frame[4:-4, 4:-4] = False
    assert (classes[frame] == 255).all() and (classes[~frame] != 255).all()
    tiles = [(r, c) for r in (0, 16) for c in (0, 16)]
    feeds = clean_feeds(slovenia, tiles, rows, cols)
    for k, (r, c) in enumerate(tiles):
        for g in range((T // P) ** 2):
            y, x = r + g // (T // P) * P, c + g % (T // P) * P
            feeds["s2_mask"][k, :, g] = frame[y, x]          # frame tokens: missing
    logits = run_session(tiny_models["segmentation"], feeds)
    for (r, c), lg in zip(tiles, logits):
        inner = ~frame[r:r + T, c:c + T]
        np.testing.assert_array_equal(classes[r:r + T, c:c + T][inner], lg.argmax(0)[inner])
        np.testing.assert_allclose(confidence[r:r + T, c:c + T][inner], _confidence(lg)[inner],
                                   atol=1e-5)
    # and the unmasked clean run differs: the frame's tokens did change the interior
    feeds["s2_mask"][:] = False
    plain = run_session(tiny_models["segmentation"], feeds)
    assert not np.allclose(np.stack([_confidence(lg) for lg in plain])[0][4:, 4:],
                           confidence[4:16, 4:16], atol=1e-5)


def test_v2_crop_smaller_than_a_tile_is_a_tile_with_padding_masked(tiny_models, scene, slovenia,
                                                                    tmp_path):
    rows, cols = 8, 12                       # whole tokens inside, the rest of the tile padding
    inputs = scene(rows=rows, cols=cols)
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    report = run_model(tiny_models["segmentation"], inputs, out,
                       RunOptions(tile_overlap_pct=0, confidence_path=conf))
    assert report.tiles == 1
    feeds = clean_feeds(slovenia, [(0, 0)], rows, cols)     # garbage outside the crop
    grid = np.arange((T // P) ** 2)
    outside = (grid // (T // P) * P >= rows) | (grid % (T // P) * P >= cols)
    feeds["s2_mask"][0, :, outside] = True
    dem_grid = np.arange(16)
    feeds["dem_mask"][0, 0] = (dem_grid // 4 * 2 >= rows // 2) | (dem_grid % 4 * 2 >= cols // 2)
    lg = run_session(tiny_models["segmentation"], feeds)[0]
    np.testing.assert_array_equal(_read(out), lg.argmax(0)[:rows, :cols])
    np.testing.assert_allclose(_read(conf), _confidence(lg)[:rows, :cols], atol=1e-5)


@pytest.fixture(scope="module")
def v1_model(tmp_path_factory):
    """The tiny segmentation model exported under contract version 1."""
    import torch

    from training.export import export_onnx
    from tests.tiny_model import _TinyNet, tiny_metadata

    doc = tiny_metadata().to_dict()
    doc["schema_version"], doc["embedding_dim"] = 1, None
    meta = parse_metadata(doc)
    torch.manual_seed(0)
    net = _TinyNet(meta).eval()
    path = str(tmp_path_factory.mktemp("v1") / "tiny-v1.onnx")
    export_onnx(net, meta, path)
    return path


def test_v1_model_zero_fill_date_mask_and_log_line(v1_model, scene, slovenia, tmp_path):
    assert read_model_metadata(v1_model).schema_version == 1
    rows = cols = 32
    inputs = scene(rows=rows, cols=cols, s2_edit=_frame(4))
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    lines = []
    run_model(v1_model, inputs, out, RunOptions(tile_overlap_pct=0, confidence_path=conf),
              log=lines.append)
    assert ("model tiny-segmentation uses contract version 1: nodata pixels are zero-filled and "
            "whole tiles are attended; re-export it for missing-data masks") in lines
    classes, confidence = _read(out), _read(conf)
    assert (classes[:4] == 255).all() and (classes[4:-4, 4:-4] != 255).all()
    tiles = [(r, c) for r in (0, 16) for c in (0, 16)]
    feeds = clean_feeds(slovenia, tiles, rows, cols, token_masks=False)
    for k, (r, c) in enumerate(tiles):                      # the frame zero-filled
        s = feeds["s2"][k]
        for y in range(T):
            for x in range(T):
                if not (4 <= r + y < rows - 4 and 4 <= c + x < cols - 4):
                    s[:, :, y, x] = 0.0
    logits = run_session(v1_model, feeds)
    for (r, c), lg in zip(tiles, logits):
        inner = classes[r:r + T, c:c + T] != 255
        np.testing.assert_allclose(confidence[r:r + T, c:c + T][inner], _confidence(lg)[inner],
                                   atol=1e-5)


def test_v2_map_does_not_depend_on_the_date_source(tiny_models, slovenia, tmp_path):
    """The same scenes dated by a full timestamp tag (10:00 UTC), by a date-only file name and
    by explicit dates give the same map: version-2 models get hour 0 from every source."""
    from engine.api import SliceInput
    from tests.engine.conftest import grid, write_tif

    rows = cols = 48
    dem = write_tif(tmp_path / "dem.tif", downsample2(slovenia["dem"][:rows, :cols])
                    .astype("float32"), grid(20.0), nodata=-9999.0)
    tagged, named, given = [], [], []
    for i in ORDER:
        day = SCENE_DATES[i]
        data = slovenia["s2"][i][:, :rows, :cols]
        tagged.append(write_tif(tmp_path / f"tagged_{i}.tif", data, grid(), nodata=0,
                                tags={"ACQUISITIONDATETIME": f"{day}T10:00:00Z"}))
        named.append(write_tif(tmp_path / f"S2_{day.replace('-', '')}.tif", data, grid(),
                               nodata=0))
        given.append(SliceInput(write_tif(tmp_path / f"plain_{i}.tif", data, grid(), nodata=0),
                                dt.date.fromisoformat(day)))
    maps = []
    for k, s2 in enumerate((tagged, named, given)):
        out = str(tmp_path / f"o{k}.tif")
        run_model(tiny_models["segmentation"], {"s2": s2, "dem": [dem]}, out,
                  RunOptions(confidence_path=str(tmp_path / f"c{k}.tif")))
        maps.append((_read(out), _read(str(tmp_path / f"c{k}.tif"))))
    for classes, confidence in maps[1:]:
        np.testing.assert_array_equal(classes, maps[0][0])
        np.testing.assert_array_equal(confidence, maps[0][1])
