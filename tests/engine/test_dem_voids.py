"""A DEM void value that the raster does not declare as nodata (-32768 here) stays out of the
resampling when the DEM is not on the model grid (another pixel size, another CRS, GCPs).

The engine takes elevations outside -1000..9000 m as nodata (engine.preprocessing.radiometry,
ELEVATION_M_RANGE). Before the fix that check ran only after GDAL's bilinear warp, which had
already blended -32768 into the neighbouring pixels (0.02 * -32768 + 0.98 * 300 = -361 m,
inside the range: a wrong elevation, silently). The reference here is GDAL's own warp of the
same DEM with the void declared as nodata (rasterio WarpedVRT / reproject, not the engine's
code), on real data: the Slovenia DEM (eo-learn example data) with a block of void pixels.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from engine.align import SliceReader, model_grid
from engine.stack import open_slice
from tests.engine.conftest import CRS, grid, write_tif
from tests.tiny_model import tiny_metadata

VOID = -32768.0
ROWS, COLS = slice(30, 56), slice(40, 63)      # the void block, 10 m pixels of the real DEM
#: the engine's output against GDAL's warp of the declared file: metres
TOL_M = 0.05


def _void_dem(slovenia) -> np.ndarray:
    dem = slovenia["dem"].copy()                # float32 [101, 100], 10 m, EPSG:32633
    dem[ROWS, COLS] = VOID
    return dem


def _write_pair(folder, name, dem, transform, crs=CRS, gcps=None):
    """The same pixels twice: void undeclared, and declared as nodata."""
    paths = {}
    for key, nodata in (("undeclared", None), ("declared", VOID)):
        path = os.path.join(folder, f"{name}_{key}.tif")
        if gcps is None:
            write_tif(path, dem, transform, crs=crs, nodata=nodata)
        else:
            with rasterio.open(path, "w", driver="GTiff", width=dem.shape[1], height=dem.shape[0],
                               count=1, dtype="float32", nodata=nodata) as dst:
                dst.write(dem[None])
                dst.gcps = (gcps, rasterio.crs.CRS.from_string(crs))
        paths[key] = path
    return paths


def _warped(dem, dst_crs, resolution):
    """``dem`` (EPSG:32633, 10 m) warped by GDAL into ``dst_crs`` with the void declared on
    both sides: the void stays -32768 (never blended), and so do the corners it does not cover."""
    h, w = dem.shape
    bounds = rasterio.transform.array_bounds(h, w, grid(10.0))
    t, dw, dh = calculate_default_transform(CRS, dst_crs, w, h, *bounds, resolution=resolution)
    out = np.full((dh, dw), VOID, np.float32)
    reproject(dem, out, src_transform=grid(10.0), src_crs=CRS, dst_transform=t, dst_crs=dst_crs,
              src_nodata=VOID, dst_nodata=VOID, resampling=Resampling.bilinear)
    return out, t


def _variants(tmp_path, slovenia):
    dem = _void_dem(slovenia)
    out = {"10 m on the 20 m grid": _write_pair(tmp_path, "px10", dem, grid(10.0)),
           "30 m": None, "UTM 34N": None, "EPSG:4326": None, "GCPs only": None}
    d30, t30 = _warped(dem, CRS, 30.0)
    out["30 m"] = _write_pair(tmp_path, "px30", d30, t30)
    d34, t34 = _warped(dem, "EPSG:32634", 10.0)
    out["UTM 34N"] = _write_pair(tmp_path, "utm34", d34, t34, crs="EPSG:32634")
    d4326, t4326 = _warped(dem, "EPSG:4326", 1e-4)
    out["EPSG:4326"] = _write_pair(tmp_path, "geo", d4326, t4326, crs="EPSG:4326")
    h, w = dem.shape
    t = grid(10.0)
    gcps = [GroundControlPoint(row=r, col=c, x=(t * (c, r))[0], y=(t * (c, r))[1])
            for r, c in ((0, 0), (0, w), (h, 0), (h, w), (h // 2, w // 2))]
    out["GCPs only"] = _write_pair(tmp_path, "gcps", dem, None, gcps=gcps)
    # the same pixels on a geotransform rotated by 3 degrees, and stored south-up
    out["rotated 3 deg"] = _write_pair(tmp_path, "rot", dem, grid(10.0) * Affine.rotation(3.0))
    out["south-up"] = _write_pair(tmp_path, "sup", np.ascontiguousarray(dem[::-1]),
                                  Affine(10.0, 0.0, t.c, 0.0, 10.0, t.f - 10.0 * h))
    return out


def _model_grid():
    # reference S2 grid: 10 m at the patch's corner, 100 x 100 px; DEM tiles 8 px for 16 -> 20 m
    return model_grid(rasterio.crs.CRS.from_string(CRS), grid(10.0), 100, 100, 16, 8)


def _engine_read(path, strip=None):
    """The DEM on the model grid through the engine's reader: one window, or strips of 8 rows
    and ``strip`` columns as the runner reads a row of tiles (from -4 px: windows overlapping
    the grid's edge, as padded tiles do)."""
    g = _model_grid()
    reader = SliceReader(open_slice(path, tiny_metadata().modality("dem")), g)
    try:
        assert not reader.direct
        if strip is None:
            return reader.read(0, 0, g.height, g.width)[0]
        out = np.full((g.height + 8, g.width + 8 + strip), np.nan, np.float32)
        for r in range(-4, g.height, 8):
            for c in range(-4, g.width, strip):
                out[r + 4:r + 12, c + 4:c + 4 + strip] = reader.read(r, c, 8, strip)[0]
        return out[4:4 + g.height, 4:4 + g.width]
    finally:
        reader.close()


def _gdal_reference(path):
    """GDAL's bilinear warp of the file that declares the void, onto the model grid."""
    g = _model_grid()
    with rasterio.open(path) as src:
        assert src.nodata == VOID
        out = np.full((g.height, g.width), np.nan, np.float32)
        kw = ({"gcps": src.gcps[0], "src_crs": src.gcps[1]} if src.gcps[0]
              else {"src_transform": src.transform, "src_crs": src.crs})
        reproject(src.read(1), out, src_nodata=VOID, dst_transform=g.transform, dst_crs=g.crs,
                  dst_nodata=np.nan, resampling=Resampling.bilinear, **kw)
    return out


def void_errors(got, want, lo, hi) -> dict:
    """Figures of a read against the reference: pixels whose nodata differs, finite pixels off
    by more than 5 m, finite pixels outside the real DEM's range (lo..hi) by more than 1 m."""
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    both = ~nan_got & ~nan_want
    with np.errstate(invalid="ignore"):
        off = both & (np.abs(got - want) > 5.0)
        out_of_range = ~nan_got & ((got < lo - 1.0) | (got > hi + 1.0))
    return {"footprint": int((nan_got != nan_want).sum()), "off_5m": int(off.sum()),
            "out_of_range": int(out_of_range.sum()), "pixels": int(got.size),
            "max_err": float(np.nanmax(np.abs(got - want)[both])) if both.any() else 0.0}


@pytest.mark.parametrize("case", ["10 m on the 20 m grid", "30 m", "UTM 34N", "EPSG:4326",
                                  "GCPs only", "rotated 3 deg", "south-up"])
def test_undeclared_void_stays_out_of_the_resampling(tmp_path, slovenia, case):
    """Every pixel equal to GDAL's warp of the file declaring the void (nodata footprint,
    values to 0.05 m; measured: identical), read in one window or strip by strip.

    Before the fix (engine at eaad859), of the 2500 model pixels: nodata footprint different
    in 50 (10 m), 39 (30 m), 184 (UTM 34N), 109 (EPSG:4326), 50 (GCPs) pixels; elevations
    wrong by more than 5 m and outside the real DEM's range (blends of -32768, up to 1680 m
    off) in 2, 0, 21, 6, 2 pixels; rotated 3 deg: 38 and 3, south-up: 50 and 2. After: 0
    everywhere.
    """
    paths = _variants(tmp_path, slovenia)[case]
    real = slovenia["dem"]
    lo, hi = float(real.min()), float(real.max())
    got = _engine_read(paths["undeclared"])
    want = _gdal_reference(paths["declared"])
    figures = void_errors(got, want, lo, hi)
    assert np.isnan(want).sum() > 100 and (~np.isnan(want)).sum() > 1000   # a void, and land
    assert figures["footprint"] == 0, figures
    assert figures["out_of_range"] == 0, figures
    assert figures["off_5m"] == 0, figures
    both = ~np.isnan(got)
    np.testing.assert_allclose(got[both], want[both], atol=TOL_M, rtol=0)
    # read window by window as the runner does (each window warped from its own part of the
    # raster), and the declared file through the engine: the same pixels
    for other in (_engine_read(paths["undeclared"], strip=24),
                  _engine_read(paths["declared"], strip=16)):
        assert void_errors(other, want, lo, hi)["footprint"] == 0
        np.testing.assert_allclose(other[both], want[both], atol=TOL_M, rtol=0)


def test_warped_blocks_equal_gdal_warped_vrt(tmp_path, slovenia):
    """On a model grid of several warp blocks (1.25 m: 800 x 800 px, 7 x 2 blocks of 128 x 512),
    the DEM in UTM 34N read strip by strip gives exactly the pixels of GDAL's warped VRT of the
    file declaring its void (what the engine read DEMs through before): nothing changes for a
    DEM whose voids are declared, except that undeclared ones no longer leak."""
    from rasterio.vrt import WarpedVRT

    paths = _variants(tmp_path, slovenia)["UTM 34N"]
    g = model_grid(rasterio.crs.CRS.from_string(CRS), grid(10.0), 100, 100, 16, 128)
    assert (g.width, g.height) == (800, 800)
    with rasterio.open(paths["declared"]) as src, WarpedVRT(
            src, crs=g.crs, transform=g.transform, width=g.width, height=g.height,
            resampling=Resampling.bilinear, nodata=np.nan, dtype="float32") as vrt:
        want = vrt.read(1)
    for key in ("undeclared", "declared"):
        reader = SliceReader(open_slice(paths[key], tiny_metadata().modality("dem")), g)
        got = np.full((g.height, g.width), np.nan, np.float32)
        for r in range(0, g.height, 40):
            for c in range(-100, g.width, 300):      # strips across block edges and the grid's
                win = reader.read(r, c, 40, 300)[0]
                c0 = max(c, 0)
                got[r:r + 40, c0:c + 300] = win[:, c0 - c:g.width - c]
        reader.close()
        assert np.isnan(want).sum() > 10000 and (~np.isnan(want)).sum() > 100000
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        both = ~np.isnan(want)
        np.testing.assert_allclose(got[both], want[both], atol=1e-3, rtol=0)


def test_map_with_undeclared_void_equals_declared(tiny_models, scene, slovenia, tmp_path):
    """End to end (tiny segmentation model, real S2 at 10 m + the DEM at 10 m with the void
    block, read onto the model's 20 m DEM grid): the map and the confidence with the void
    undeclared equal those with the void declared as nodata.

    Before the fix (engine at eaad859): 2.03 % of the map pixels (205 of 10100) differed and
    the confidence was up to 0.040 off; now both identical."""
    from engine.api import RunOptions, run_model

    inputs = scene()
    paths = _write_pair(tmp_path, "dem10", _void_dem(slovenia), grid(10.0))
    out = {}
    for key, dem in paths.items():
        path, conf = str(tmp_path / f"map_{key}.tif"), str(tmp_path / f"conf_{key}.tif")
        run_model(tiny_models["segmentation"], {"s2": inputs["s2"], "dem": [dem]}, path,
                  RunOptions(confidence_path=conf, cog=False))
        with rasterio.open(path) as a, rasterio.open(conf) as b:
            out[key] = (a.read(1), b.read(1))
    (map_u, conf_u), (map_d, conf_d) = out["undeclared"], out["declared"]
    differ = map_u != map_d
    print(f"map pixels differing: {100 * differ.mean():.2f} % ({differ.sum()}), confidence max "
          f"diff {np.nanmax(np.abs(conf_u.astype(float) - conf_d.astype(float))):.4f}")
    np.testing.assert_array_equal(map_u, map_d)
    np.testing.assert_array_equal(conf_u, conf_d)
