"""DATES entries that name several layers (a new-user trial: five dates in five folders, every
file named ``stack.tif``; ``DATES=stack.tif=2015-07-11`` dated all five 2015-07-11 and the
run wrote a wrong map with exit 0). maestro:segment through processing.run in real headless
QGIS and through qgis_process, with the bundled model on the bundled sample (S2 L1C, 5 dates,
and its DEM) copied into per-date folders under one file name, date tags removed so DATES is
the only source of the dates."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.plugin.conftest import read_raster

pytestmark = pytest.mark.usefixtures("maestro")

SAMPLE = os.path.join(ROOT, "resources", "sample")
MODEL = os.path.join(ROOT, "resources", "models", "maestro-tiny-slovenia-lulc.onnx")
DEM = os.path.join(SAMPLE, "dem.tif")
#: the sample's S2 dates (file names S2_L1C_<YYYYMMDD>.tif, ACQUISITIONDATETIME tags).
DATES = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]
#: the tags that date a raster (removed from the copies).
DATE_TAGS = ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME")


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """(root, [root/dirs/<YYYYMMDD>/stack.tif per sample date]): the sample's pixels and
    non-date tags, no date anywhere but in the folder names (which the engine does not read)."""
    import rasterio

    root = tmp_path_factory.mktemp("trial")
    paths = []
    for day in DATES:
        compact = day.replace("-", "")
        folder = root / "dirs" / compact
        folder.mkdir(parents=True)
        with rasterio.open(os.path.join(SAMPLE, f"S2_L1C_{compact}.tif")) as src:
            data, profile = src.read(), src.profile
            tags = {k: v for k, v in src.tags().items() if k not in DATE_TAGS}
            band_tags = [src.tags(i) for i in range(1, src.count + 1)]
            descriptions = src.descriptions
        path = folder / "stack.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(**tags)
            for i, (bt, desc) in enumerate(zip(band_tags, descriptions), start=1):
                if bt:
                    dst.update_tags(i, **bt)
                if desc:
                    dst.set_band_description(i, desc)
        with rasterio.open(path) as check:
            assert not set(check.tags()) & set(DATE_TAGS)
        paths.append(str(path))
    return root, paths


def _segment(stack_paths, dates, out):
    import processing

    return processing.run("maestro:segment", {"MODEL": MODEL, "S2": stack_paths, "DEM": [DEM],
                                              "DATES": dates, "OUTPUT": str(out),
                                              "DEVICE": "cpu"})


@pytest.mark.parametrize("dates", ["stack.tif=2015-07-11", "S2:stack.tif=2015-07-11",
                                   "stack=2015-07-11"])
def test_a_file_or_layer_name_of_several_layers_is_refused_and_nothing_written(
        stacks, tmp_path, dates):
    """The trial's entry (file name), with the S2: prefix, and by layer name ('stack', the
    name QGIS gives the layers): refused naming the entry and the five layers; no output."""
    from qgis.core import QgsProcessingException

    _, paths = stacks
    with pytest.raises(QgsProcessingException) as caught:
        _segment(paths, dates, tmp_path / "lc.tif")
    message = str(caught.value)
    assert f"DATES entry '{dates}' matches 5 input layers" in message
    assert all(p in message for p in paths), message
    assert "full file path" in message
    assert not os.listdir(tmp_path)


def test_full_paths_date_each_layer_and_give_the_map_of_the_tagged_sample(stacks, tmp_path):
    """One full-path entry per layer (two in YYYYMMDD form, the form --date takes): each
    layer gets its own date (DATES_USED) and the map is the one of the original sample files,
    dated by their tags."""
    _, paths = stacks
    entries = [f"{p}={d.replace('-', '') if i % 2 else d}"
               for i, (p, d) in enumerate(zip(paths, DATES))]
    got = _segment(paths, ";\n".join(entries), tmp_path / "lc.tif")
    assert json.loads(got["DATES_USED"])["s2"] == DATES
    originals = [os.path.join(SAMPLE, f"S2_L1C_{d.replace('-', '')}.tif") for d in DATES]
    ref = _segment(originals, "", tmp_path / "ref.tif")
    assert json.loads(ref["DATES_USED"])["s2"] == DATES
    lc, _ = read_raster(got["OUTPUT"])
    expected, _ = read_raster(ref["OUTPUT"])
    assert np.array_equal(lc, expected)


def test_a_layer_dated_by_two_entries_with_different_dates_is_refused(stacks, tmp_path):
    from qgis.core import QgsProcessingException

    _, paths = stacks
    dates = ";".join(f"{p}={d}" for p, d in zip(paths, DATES)) + f";{paths[0]}=20150712"
    with pytest.raises(QgsProcessingException,
                       match=r"give the layer .*stack.tif two dates \(2015-07-11, 2015-07-12\)"):
        _segment(paths, dates, tmp_path / "lc.tif")
    assert not os.listdir(tmp_path)


def test_qgis_process_trial_command_with_relative_paths(qgis_env, stacks, tmp_path):
    """The trial's command line, run from the folder holding dirs/: the name entry fails
    (exit 1, the message on the output, no file); relative full paths in YYYYMMDD form run."""
    root, paths = stacks
    rel = [os.path.relpath(p, root) for p in paths]
    base = ["qgis_process", "--json", "run", "maestro:segment", "--", f"MODEL={MODEL}",
            *[f"S2={p}" for p in rel], f"DEM={DEM}", "DEVICE=cpu"]
    bad = subprocess.run([*base, f"OUTPUT={tmp_path / 'bad.tif'}", "DATES=stack.tif=2015-07-11"],
                         env=qgis_env, cwd=root, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "DATES entry 'stack.tif=2015-07-11' matches 5 input layers" in bad.stdout + bad.stderr
    assert not os.listdir(tmp_path)
    dates = ";".join(f"{p}={d.replace('-', '')}" for p, d in zip(rel, DATES))
    good = subprocess.run([*base, f"OUTPUT={tmp_path / 'lc.tif'}", f"DATES={dates}"],
                          env=qgis_env, cwd=root, capture_output=True, text=True, timeout=600)
    assert good.returncode == 0, good.stdout + good.stderr
    results = json.loads(good.stdout[good.stdout.index("{"):])["results"]
    assert json.loads(results["DATES_USED"])["s2"] == DATES
