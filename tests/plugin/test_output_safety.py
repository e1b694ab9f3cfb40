"""maestro:segment in real headless QGIS: an output that is an input is refused before any
work, and every failure (also an unexpected one) is one line, never a traceback."""
from __future__ import annotations

import hashlib
import os

import pytest

pytestmark = pytest.mark.usefixtures("maestro")


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_segment_refuses_an_output_that_is_an_input(tiny_models, rasters, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    s2 = rasters.s2[0]
    before = _digest(s2)
    alias = tmp_path / "alias.tif"
    os.symlink(s2, alias)
    params = {"MODEL": tiny_models["segmentation"], "S2": rasters.s2[:2], "DEM": rasters.dem}
    with pytest.raises(QgsProcessingException, match=r"is the s2 input") as err:
        processing.run("maestro:segment", dict(params, OUTPUT=str(alias)))
    assert "\n" not in str(err.value)
    with pytest.raises(QgsProcessingException, match=r"are the same file"):
        processing.run("maestro:segment", dict(params, OUTPUT=str(tmp_path / "m.tif"),
                                               CONFIDENCE=str(tmp_path / "x" / ".." / "m.tif")))
    assert _digest(s2) == before
    assert sorted(os.listdir(tmp_path)) == ["alias.tif"]


def test_read_error_mid_run_is_one_line(tiny_models, rasters, tmp_path):
    """A truncated GeoTIFF fails only when its tiles are read: one line naming the file;
    its traceback (if the engine did not expect it) goes to the debug log, not the message."""
    import processing
    import rasterio
    from qgis.core import QgsProcessingException

    with rasterio.open(rasters.s2[0]) as src:
        profile, data = src.profile, src.read()
    profile.update(compress=None, tiled=False)
    broken = str(tmp_path / "S2_20150820.tif")
    with rasterio.open(broken, "w", **profile) as dst:
        dst.write(data)
    os.truncate(broken, os.path.getsize(broken) // 2)
    with pytest.raises(QgsProcessingException) as err:
        processing.run("maestro:segment", {"MODEL": tiny_models["segmentation"], "S2": [broken],
                                           "DEM": rasters.dem,
                                           "OUTPUT": str(tmp_path / "m.tif")})
    message = str(err.value)
    assert "\n" not in message and broken in message and "Traceback" not in message
    assert not [n for n in os.listdir(tmp_path) if "m.tif" in n]


def test_unexpected_error_names_the_debug_log(monkeypatch):
    """A bug in the engine (any exception that is not an engine error) becomes one line that
    names the error and the file holding its traceback."""
    from maestro_plugin.algorithms import base

    def buggy():
        raise ZeroDivisionError("division by zero\nsecond line")

    alg = base.MaestroAlgorithm()
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as err:
        alg.engine_call(buggy)
    message = str(err.value)
    assert message.startswith("MAESTRO failed unexpectedly: ZeroDivisionError: division by "
                              "zero; second line (details for a bug report in ")
    log = base.debug_log_path()
    assert message.endswith(f"{log})")
    with open(log, encoding="utf-8") as f:
        assert "in buggy" in f.read()[-4000:]
