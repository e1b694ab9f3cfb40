"""Where no platform rasterio exists, the installer falls back to the pip wheel, which
brings its own GDAL into QGIS's process. This test installs that wheel with the
installer's own pip command (once, cached in data-cache/; needs PyPI like `make venv`),
then runs maestro:segment in a QGIS process whose rasterio is the wheel's (GDAL 3.9 beside
QGIS's GDAL), and checks the engine reads and writes the same map as with Debian's rasterio.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from maestro_plugin import deps
from tests.conftest import ROOT
from tests.plugin.conftest import NODATA_BLOCK, read_raster

CACHE = os.path.join(ROOT, "data-cache", "rasterio-wheel")

SCRIPT = r"""
import json, sys
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
sys.path.append('/usr/share/qgis/python/plugins')
from processing.core.Processing import Processing; Processing.initialize()
import importlib.util
spec = importlib.util.spec_from_file_location('maestro', sys.argv[1] + '/__init__.py',
                                              submodule_search_locations=[sys.argv[1]])
m = importlib.util.module_from_spec(spec); sys.modules['maestro'] = m; spec.loader.exec_module(m)
plugin = m.classFactory(None); plugin.initProcessing()
import processing, rasterio
from maestro_plugin import diagnostics
args = json.loads(sys.argv[2])
result = processing.run('maestro:segment', args)
info = diagnostics.collect()
print('RESULT' + json.dumps({'rasterio': rasterio.__file__, 'info': info,
                              'provider': result['PROVIDER']}))
plugin.unload()
app.exitQgis()
"""


@pytest.fixture(scope="session")
def rasterio_wheel_dir():
    """Folder holding the rasterio wheel, installed by the installer's plan for a platform
    without a rasterio package."""
    marker = os.path.join(CACHE, ".complete")
    if not os.path.exists(marker):
        plan = deps.plan_install(["rasterio"], gpu=False, python=sys.executable, target=CACHE,
                                 rasterio_platform=None)
        assert any("its own GDAL" in note for note in plan.notes)
        run = subprocess.run(list(plan.command), capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, ("pip could not install the rasterio wheel (PyPI needed "
                                     "once):\n" + run.stdout + run.stderr)
        open(marker, "w").close()
    return CACHE


def test_engine_reads_and_writes_with_the_pip_rasterio_wheel(rasterio_wheel_dir, maestro,
                                                             tiny_models, rasters, tmp_path):
    import processing

    params = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2_hole, "DEM": [rasters.dem],
              "DEVICE": "cpu"}
    reference = processing.run("maestro:segment", {**params, "OUTPUT": str(tmp_path / "a.tif")})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, rasterio_wheel_dir, env.get("PYTHONPATH", "")])
    wheel_out = str(tmp_path / "b.tif")
    run = subprocess.run([sys.executable, "-c", SCRIPT, ROOT,
                          json.dumps({**params, "OUTPUT": wheel_out})],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout.split("RESULT", 1)[1])
    # the wheel's rasterio, with its own GDAL, in a process that also has QGIS's GDAL
    assert doc["rasterio"].startswith(rasterio_wheel_dir)
    info = doc["info"]
    assert info["gdal (rasterio)"] != info["gdal (QGIS)"]
    assert "two GDAL libraries" in info["warning"]
    ref, ref_profile = read_raster(reference["OUTPUT"])
    got, profile = read_raster(wheel_out)
    for key in ("crs", "transform", "width", "height", "dtype", "nodata"):
        assert profile[key] == ref_profile[key], key
    assert (got[0][NODATA_BLOCK] == 255).all()
    # same map; GDAL 3.9 and 3.6 may resample the 20 m DEM a hair differently at edges
    assert (got == ref).mean() > 0.99
