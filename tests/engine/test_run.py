"""run_model end to end on real GeoTIFFs (real Slovenia Sentinel-2 + DEM) with the tiny models
exported by our training code; the reference is the same ONNX model run by hand on the same
tiles."""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
import rasterio

from engine.api import RunOptions, RunReport, SliceInput, run_model
from engine.blend import weight_window
from engine.contract import read_model_metadata
from tests.engine.conftest import CRS, SCENE_DATES, downsample2, run_session

T = 16          # tiny model: S2 tile 16 px at 10 m, DEM tile 8 px at 20 m
ORDER = np.argsort(SCENE_DATES)  # scenes sorted by date (what the engine feeds)


def doy(iso):
    d = dt.date.fromisoformat(iso)
    return d.timetuple().tm_yday


def manual_feeds(slovenia, tiles, rows, cols):
    """Contract inputs for tiles (r, c) of an aligned crop, built directly from the arrays."""
    s2 = slovenia["s2"][ORDER][:, :, :rows, :cols].astype("float32") / 5000.0
    dem = (downsample2(slovenia["dem"][:rows, :cols]) - 500.0) / 300.0
    b = len(tiles)
    dates = np.array([[2015, doy(SCENE_DATES[i]), 0] for i in ORDER], dtype="int32")
    return {
        "s2": np.stack([s2[:, :, r:r + T, c:c + T] for r, c in tiles]),
        "s2_dates": np.repeat(dates[None], b, 0),
        "s2_mask": np.zeros((b, 5, (T // 4) ** 2), bool),        # contract v2: token masks
        "dem": np.stack([dem[None, None, r // 2:r // 2 + 8, c // 2:c // 2 + 8]
                         for r, c in tiles]).astype("float32"),
        "dem_dates": np.repeat(dates[:1][None], b, 0),
        "dem_mask": np.zeros((b, 1, (T // 2 // 2) ** 2), bool),
        "ref_date": np.repeat(dates[:1], b, 0),
    }


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src


def test_segmentation_equals_session_on_same_tiles(tiny_models, scene, slovenia, tmp_path):
    rows, cols = 80, 96
    inputs = scene(rows=rows, cols=cols)
    out, conf = str(tmp_path / "seg.tif"), str(tmp_path / "conf.tif")
    report = run_model(tiny_models["segmentation"], inputs, out,
                       RunOptions(tile_overlap_pct=0, batch_size=7, confidence_path=conf))
    assert isinstance(report, RunReport)
    assert report.provider == "CPUExecutionProvider" and report.task == "segmentation"
    assert report.tiles == (rows // T) * (cols // T)
    assert report.dates["s2"] == sorted(SCENE_DATES) and report.dates["dem"] == ["2015-07-11"]

    tiles = [(r, c) for r in range(0, rows, T) for c in range(0, cols, T)]
    logits = run_session(tiny_models["segmentation"], manual_feeds(slovenia, tiles, rows, cols))
    expected = np.zeros((3, rows, cols), "float32")
    for (r, c), lg in zip(tiles, logits):
        expected[:, r:r + T, c:c + T] = lg
    classes, profile, _ = read(out)
    assert profile["crs"] == rasterio.crs.CRS.from_string(CRS) and classes.shape == (1, rows, cols)
    np.testing.assert_array_equal(classes[0], expected.argmax(0))
    prob = np.exp(expected - expected.max(0)) / np.exp(expected - expected.max(0)).sum(0)
    np.testing.assert_allclose(read(conf)[0][0], prob.max(0), atol=1e-5)


def test_overlap_blends_logits_with_weight_window(tiny_models, scene, slovenia, tmp_path):
    rows, cols = 32, 48
    inputs = scene(rows=rows, cols=cols)
    conf = str(tmp_path / "conf.tif")
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(tile_overlap_pct=50, confidence_path=conf))
    stride = T // 2
    tiles = [(r, c) for r in range(0, rows - T + 1, stride) for c in range(0, cols - T + 1, stride)]
    assert report.tiles == len(tiles)
    logits = run_session(tiny_models["segmentation"], manual_feeds(slovenia, tiles, rows, cols))
    acc, wsum, w = np.zeros((3, rows, cols)), np.zeros((rows, cols)), weight_window(T)
    for (r, c), lg in zip(tiles, logits):
        acc[:, r:r + T, c:c + T] += lg * w
        wsum[r:r + T, c:c + T] += w
    blended = acc / wsum
    prob = np.exp(blended - blended.max(0)) / np.exp(blended - blended.max(0)).sum(0)
    np.testing.assert_array_equal(read(str(tmp_path / "o.tif"))[0][0], blended.argmax(0))
    np.testing.assert_allclose(read(conf)[0][0], prob.max(0), atol=1e-5)
    # no seams: the blended confidence changes no more across tile edges than inside tiles
    c = read(conf)[0][0]
    jumps = np.abs(np.diff(c, axis=1))
    assert jumps[:, T - 1].mean() < 3 * jumps.mean() + 1e-6


@pytest.mark.parametrize("rows,cols", [(101, 100), (11, 9)])
def test_odd_sizes_and_smaller_than_a_tile(tiny_models, scene, tmp_path, rows, cols):
    inputs = scene(rows=rows, cols=cols)
    out = str(tmp_path / "o.tif")
    report = run_model(tiny_models["segmentation"], inputs, out, RunOptions())
    data, profile, _ = read(out)
    assert data.shape == (1, rows, cols)
    with rasterio.open(inputs["s2"][0]) as ref:
        assert profile["transform"] == ref.transform
    assert set(np.unique(data)) <= {0, 1, 2, 255}
    # interior pixels have data everywhere; only DEM-edge pixels may be nodata
    assert (data[0, : rows - 2, : cols - 2] != 255).all()
    assert report.tiles >= 1
    if rows < T:
        assert report.tiles == 1


def test_nodata_block_in_every_date_gives_nodata_exactly_there(tiny_models, scene, tmp_path):
    def hole(i, data):
        data[:, 20:35, 40:62] = 0     # S2 nodata value

    inputs = scene(rows=64, cols=80, s2_edit=hole)
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    run_model(tiny_models["segmentation"], inputs, out, RunOptions(confidence_path=conf))
    data = read(out)[0][0]
    expect = np.zeros_like(data, dtype=bool)
    expect[20:35, 40:62] = True
    np.testing.assert_array_equal(data == 255, expect)
    assert np.isnan(read(conf)[0][0][expect]).all() and not np.isnan(read(conf)[0][0][~expect]).any()


def test_nodata_date_slot_is_masked(tiny_models, scene, slovenia, tmp_path):
    """A tile with no data in one date: that slot is fed as mask=True (and fill values), the
    pixels stay valid thanks to the other dates."""
    def hole(i, data):
        if i == 0:                     # scene 0 = 2015-08-20, third date once sorted
            data[:, 0:16, 0:16] = 0    # S2 nodata value: the whole first tile

    rows, cols = 32, 32
    inputs = scene(rows=rows, cols=cols, s2_edit=hole)
    out, conf = str(tmp_path / "o.tif"), str(tmp_path / "c.tif")
    run_model(tiny_models["segmentation"], inputs, out,
              RunOptions(tile_overlap_pct=0, confidence_path=conf))
    assert (read(out)[0][0] != 255).all()
    feeds = manual_feeds(slovenia, [(0, 0)], rows, cols)
    feeds["s2"][0, 2] = 0.0            # fill value
    feeds["s2_mask"][0, 2] = True
    logits = run_session(tiny_models["segmentation"], feeds)[0]
    prob = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    np.testing.assert_allclose(read(conf)[0][0][:16, :16], prob.max(0), atol=1e-5)


def test_dem_nodata_block_maps_to_reference_pixels(tiny_models, scene, tmp_path):
    def hole(dem):
        dem[5:10, 10:20] = -9999.0    # DEM 20 m pixels -> reference rows 10:20, cols 20:40

    inputs = scene(rows=48, cols=64, dem_edit=hole)
    out = str(tmp_path / "o.tif")
    run_model(tiny_models["segmentation"], inputs, out, RunOptions())
    data = read(out)[0][0]
    expect = np.zeros_like(data, dtype=bool)
    expect[10:20, 20:40] = True
    np.testing.assert_array_equal(data == 255, expect)


def test_dem_in_another_crs_and_pixel_size(tiny_models, scene, tmp_path):
    """A DEM in EPSG:3794 (Slovenia D96/TM) at 25 m gives nearly the result of the aligned DEM."""
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    aligned = scene(rows=64, cols=64, folder=str(tmp_path / "a"))
    other = scene(rows=64, cols=64, dem_px=10.0, dem_crs="EPSG:3794", folder=str(tmp_path / "b"))
    with rasterio.open(other["dem"][0]) as src:
        assert src.crs.to_epsg() == 3794
    conf_a, conf_b = str(tmp_path / "ca.tif"), str(tmp_path / "cb.tif")
    run_model(tiny_models["segmentation"], aligned, str(tmp_path / "a.tif"),
              RunOptions(confidence_path=conf_a))
    run_model(tiny_models["segmentation"], other, str(tmp_path / "b.tif"),
              RunOptions(confidence_path=conf_b))
    a, b = read(conf_a)[0][0], read(conf_b)[0][0]
    ok = ~np.isnan(a) & ~np.isnan(b)
    assert ok.mean() > 0.9
    assert np.abs(a[ok] - b[ok]).mean() < 0.01


def test_sub_area_equals_whole_run(tiny_models, scene, tmp_path):
    inputs = scene(rows=101, cols=100)
    whole, part = str(tmp_path / "w.tif"), str(tmp_path / "p.tif")
    conf_w, conf_p = str(tmp_path / "cw.tif"), str(tmp_path / "cp.tif")
    run_model(tiny_models["segmentation"], inputs, whole, RunOptions(confidence_path=conf_w))
    with rasterio.open(inputs["s2"][0]) as ref:
        t = ref.transform
    # pixels rows 23..70, cols 37..91
    bounds = (t.c + 37 * 10 + 1, t.f - 71 * 10 + 1, t.c + 91 * 10 + 9, t.f - 23 * 10 - 1)
    run_model(tiny_models["segmentation"], inputs, part,
              RunOptions(bounds=bounds, confidence_path=conf_p))
    p, profile, _ = read(part)
    assert p.shape == (1, 71 - 23, 92 - 37)
    assert profile["transform"].c == pytest.approx(t.c + 370)
    np.testing.assert_array_equal(p[0], read(whole)[0][0][23:71, 37:92])
    np.testing.assert_allclose(read(conf_p)[0][0], read(conf_w)[0][0][23:71, 37:92], atol=1e-6)


def test_classification_per_tile_footprint(tiny_models, scene, slovenia, tmp_path):
    rows, cols = 48, 64
    inputs = scene(rows=rows, cols=cols)
    out = str(tmp_path / "cls.tif")
    run_model(tiny_models["classification"], inputs, out, RunOptions(tile_overlap_pct=50))
    data, profile, _ = read(out)
    assert data.shape == (3, rows // T, cols // T) and profile["dtype"] == "float32"
    assert profile["transform"].a == pytest.approx(10.0 * T)
    tiles = [(r, c) for r in range(0, rows, T) for c in range(0, cols, T)]
    logits = run_session(tiny_models["classification"], manual_feeds(slovenia, tiles, rows, cols))
    expected = 1 / (1 + np.exp(-logits))
    got = data.transpose(1, 2, 0).reshape(-1, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with rasterio.open(out) as src:
        assert src.descriptions == ("forest", "grassland", "artificial")


def test_embedding_token_grid(tiny_models, scene, slovenia, tmp_path):
    rows, cols = 32, 48
    inputs = scene(rows=rows, cols=cols)
    out = str(tmp_path / "emb.tif")
    run_model(tiny_models["embedding"], inputs, out, RunOptions(tile_overlap_pct=0))
    data, profile, _ = read(out)
    dim = read_model_metadata(tiny_models["embedding"]).embedding_dim
    assert data.shape == (dim, rows // 4, cols // 4)
    assert profile["transform"].a == pytest.approx(40.0)
    tiles = [(r, c) for r in range(0, rows, T) for c in range(0, cols, T)]
    emb = run_session(tiny_models["embedding"], manual_feeds(slovenia, tiles, rows, cols))
    expected = np.zeros_like(data)
    for (r, c), e in zip(tiles, emb):
        expected[:, r // 4:r // 4 + 4, c // 4:c // 4 + 4] = e
    np.testing.assert_allclose(data, expected, atol=1e-5)


def gdal_facts(path):
    """What a GDAL client (QGIS) sees; objects are released band first (GDAL's Python
    bindings crash when a band outlives its dataset)."""
    from osgeo import gdal

    ds = gdal.Open(path)
    ds.GetGeoTransform()  # as any client does first; GDAL 3.6 loads the .aux.xml (PAM) then
    band = ds.GetRasterBand(1)
    ct = band.GetColorTable()
    facts = {"layout": ds.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE"),
             "categories": band.GetCategoryNames(), "nodata": band.GetNoDataValue(),
             "block": band.GetBlockSize(),
             "colors": [ct.GetColorEntry(i)[:3] for i in range(3)] if ct else None}
    del ct, band, ds
    return facts


def test_output_is_a_styled_cog(tiny_models, scene, tmp_path):
    inputs = scene(rows=40, cols=40)
    out = str(tmp_path / "cog.tif")
    run_model(tiny_models["segmentation"], inputs, out, RunOptions())
    info = gdal_facts(out)
    assert info["layout"] == "COG"
    assert info["categories"][:3] == ["forest", "grassland", "artificial"]
    assert info["colors"][0] == (0x1b, 0x78, 0x37) and info["colors"][2] == (0xd7, 0x30, 0x27)
    assert info["nodata"] == 255
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(p) for p in inputs["s2"] + inputs["dem"]] + ["cog.tif", "cog.tif.aux.xml"])
    plain = str(tmp_path / "plain.tif")
    run_model(tiny_models["segmentation"], inputs, plain, RunOptions(cog=False))
    info = gdal_facts(plain)
    assert info["layout"] != "COG" and info["block"] == [256, 256]
    assert info["categories"][:3] == ["forest", "grassland", "artificial"]


def test_callbacks_dates_and_subsampling(tiny_models, scene, slovenia, tmp_path):
    inputs = scene(rows=32, cols=32)
    # 8 dates (> max_dates 6): the five scenes plus three explicit-date near-copies (+1 DN:
    # exact copies are refused as the same acquisition twice)
    from tests.engine.conftest import grid, write_tif

    extra = [SliceInput(write_tif(tmp_path / f"extra_{k}.tif", slovenia["s2"][k][:, :32, :32] + 1,
                                  grid(), nodata=0), dt.date(2016, 5, 1 + k)) for k in range(3)]
    fractions, lines = [], []
    report = run_model(tiny_models["segmentation"],
                       {"s2": inputs["s2"] + extra, "dem": inputs["dem"]},
                       str(tmp_path / "o.tif"), RunOptions(),
                       progress=lambda f, m: fractions.append(f), log=lines.append)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("8 dates given" in line and "at most 6" in line for line in lines)
    assert len(report.dates["s2"]) == 6
    assert report.dates["s2"][0] == "2015-07-11" and report.dates["s2"][-1] == "2016-05-03"
    assert report.messages == lines
    assert any("CPUExecutionProvider" in line for line in lines)


def test_device_cpu_and_threads(tiny_models, scene, tmp_path):
    inputs = scene(rows=20, cols=20)
    report = run_model(tiny_models["segmentation"], inputs, str(tmp_path / "o.tif"),
                       RunOptions(device="cpu", threads=1, batch_size=1))
    assert report.provider == "CPUExecutionProvider"


def test_session_is_reused_across_runs(tiny_models, scene, tmp_path):
    from engine.session import cached_session

    inputs = scene(rows=20, cols=20)
    run_model(tiny_models["segmentation"], inputs, str(tmp_path / "a.tif"), RunOptions(threads=1))
    first = cached_session(tiny_models["segmentation"], "auto", 1)
    run_model(tiny_models["segmentation"], inputs, str(tmp_path / "b.tif"), RunOptions(threads=1))
    assert cached_session(tiny_models["segmentation"], "auto", 1)[0] is first[0]


def test_sub_area_on_the_token_grid_equals_whole_run(tiny_models, scene, tmp_path):
    inputs = scene(rows=64, cols=72)
    whole, part = str(tmp_path / "w.tif"), str(tmp_path / "p.tif")
    run_model(tiny_models["embedding"], inputs, whole, RunOptions())
    with rasterio.open(inputs["s2"][0]) as ref:
        t = ref.transform
    # reference pixels rows 10..41, cols 22..49 -> tokens (4 px) rows 2..10, cols 5..12
    bounds = (t.c + 22 * 10 + 1, t.f - 42 * 10 + 1, t.c + 50 * 10 - 1, t.f - 10 * 10 - 1)
    run_model(tiny_models["embedding"], inputs, part, RunOptions(bounds=bounds))
    p, profile, _ = read(part)
    w = read(whole)[0]
    assert p.shape[1:] == (11 - 2, 13 - 5)
    assert profile["transform"].c == pytest.approx(t.c + 5 * 40)
    np.testing.assert_allclose(p, w[:, 2:11, 5:13], atol=1e-6)
