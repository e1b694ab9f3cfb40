"""The plugin ZIP (`make package`): what it holds, and that QGIS's own plugin installer code
installs it into a fresh profile from which maestro:segment runs on the bundled sample.

The install runs in a child QGIS process (fresh profile through QGIS_CUSTOM_CONFIG_PATH,
neither the repository nor QGIS_PLUGINPATH on its paths): it follows
``pyplugin_installer.installer.QgsPluginInstaller.installFromZipFile`` step by step with the
same functions (``unzip``, ``removeDir``, ``updateAvailablePlugins``, ``loadPlugin``,
``startPlugin``, the installed-plugins scan of ``installer_data``), leaving out its message
boxes and plugin-manager window, which need the desktop's iface.
"""
from __future__ import annotations

import ast
import glob
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT

SAMPLE = os.path.join(ROOT, "resources", "sample")

CHILD = r'''
import json, os, sys
zip_path, out_path = sys.argv[1:3]
s2 = sys.argv[3:-1]
dem = sys.argv[-1]
sys.path[:0] = ["/usr/share/qgis/python", "/usr/share/qgis/python/plugins"]
from qgis.core import Qgis, QgsApplication, QgsSettings
# the names QGIS's main() sets: QgsSettings then writes <profile>/QGIS/QGIS3.ini
QgsApplication.setOrganizationName("QGIS")
QgsApplication.setApplicationName("QGIS3")
app = QgsApplication([], False)
QgsApplication.initQgis()
import qgis.utils
# What QGIS's Python start-up does (QgsPythonUtilsImpl::checkSystemImports): the profile's
# plugin folder first on the plugin paths and sys.path, then the system plugins.
HOME_PLUGIN_PATH = os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "plugins")
qgis.utils.HOME_PLUGIN_PATH = HOME_PLUGIN_PATH
qgis.utils.plugin_paths = [HOME_PLUGIN_PATH, "/usr/share/qgis/python/plugins"]
sys.path[:0] = [HOME_PLUGIN_PATH]
from pyplugin_installer.unzip import unzip
from pyplugin_installer.installer_data import plugins, removeDir
from pyplugin_installer.version_compare import isCompatible

report = {"home_plugin_path": HOME_PLUGIN_PATH}
# installFromZipFile: the plugin name is the folder of the shortest metadata.txt path
import zipfile
with zipfile.ZipFile(zip_path) as zf:
    name = os.path.split(sorted(f for f in zf.namelist() if f.endswith("metadata.txt"))[0])[0]
report["name"] = name
os.makedirs(HOME_PLUGIN_PATH, exist_ok=True)
unzip(zip_path, HOME_PLUGIN_PATH, None)
removeDir(os.path.join(HOME_PLUGIN_PATH, name))
unzip(zip_path, HOME_PLUGIN_PATH, None)
qgis.utils.updateAvailablePlugins()
plugins.getAllInstalled()
installed = plugins.all().get(name) or {}
report["installed"] = {k: installed.get(k) for k in
                       ("id", "name", "version_installed", "error", "error_details", "status",
                        "library")}
# the metadata as QGIS's plugin scan read it, and the installer's compatibility rule
# (getInstalledPlugin: a missing maximum becomes <major>.99) for QGIS 3 and 4 versions
meta_min = qgis.utils.pluginMetadata(name, "qgisMinimumVersion")
meta_max = qgis.utils.pluginMetadata(name, "qgisMaximumVersion")
report["metadata"] = {"min": meta_min, "max": meta_max}
report["compatible"] = {v: isCompatible(v, meta_min, meta_max)
                        for v in ("3.40.6", "4.0.0", "4.2.1", "5.0.0")}
report["loaded"] = bool(qgis.utils.loadPlugin(name))
report["started"] = bool(qgis.utils.startPlugin(name))
if report["started"]:
    QgsSettings().setValue("/PythonPlugins/" + name, True)

from processing.core.Processing import Processing
Processing.initialize()
import processing
alg = QgsApplication.processingRegistry().algorithmById("maestro:segment")
report["algorithm"] = alg is not None
result = processing.run("maestro:segment", {"S2": s2, "DEM": dem, "OUTPUT": out_path})
report["output"] = result["OUTPUT"]
report["modules"] = {m: getattr(sys.modules.get(m), "__file__", None)
                     for m in ("engine", "engine.runner", "maestro_plugin", "training")}
report["training_loaded"] = any(m == "training" or m.startswith("training.")
                                for m in sys.modules)
print("REPORT " + json.dumps(report))
qgis.utils.unloadPlugin(name)
QgsApplication.exitQgis()
'''


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    """The ZIP as `make package` builds it (scripts/package.sh), into a temporary folder."""
    out = tmp_path_factory.mktemp("dist") / "maestro.zip"
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh"),
                          "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    return str(out)


def _clean_env(profile):
    """The environment of a QGIS user: venv on PATH (onnxruntime), a fresh profile, nothing
    that points at the repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "QGIS_PLUGINPATH", "QGIS_CUSTOM_CONFIG_PATH")}
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(profile)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                   os.environ.get("PATH", "")])
    return env


def test_zip_holds_one_plugin_folder_with_only_run_time_files(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as zf:
        names = zf.namelist()
        size = os.path.getsize(plugin_zip)
        python_sources = {n: zf.read(n).decode() for n in names if n.endswith(".py")}
    assert {n.split("/")[0] for n in names} == {"maestro"}
    for required in ("maestro/__init__.py", "maestro/metadata.txt", "maestro/LICENSE",
                     "maestro/maestro_plugin/plugin.py", "maestro/engine/runner.py",
                     "maestro/resources/models/maestro-tiny-slovenia-lulc.onnx",
                     "maestro/resources/icons/maestro.svg"):
        assert required in names
    for name in names:
        parts = name.split("/")
        assert parts[1] not in ("training", "tests", "bench", "scripts", "docs", ".venv",
                                ".qgis", "data-cache", "dist"), name
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".aux.xml")), name
        assert "resources/sample" not in name, name
    assert size < 5 * 2**20, f"{size} bytes"
    # neither the plugin nor the engine imports training (it is not in the ZIP)
    for name, source in python_sources.items():
        for node in ast.walk(ast.parse(source)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                       else [])
            assert not any(m.split(".")[0] == "training" for m in modules), name


def test_zip_installs_with_qgis_installer_and_segments_the_sample(plugin_zip, tmp_path,
                                                                 qgis_env):
    profile = tmp_path / "profile"
    child = tmp_path / "install_and_run.py"
    child.write_text(CHILD)
    out = tmp_path / "landcover.tif"
    s2 = sorted(glob.glob(os.path.join(SAMPLE, "S2_L1C_*.tif")))
    env = _clean_env(profile)
    run = subprocess.run([sys.executable, str(child), plugin_zip, str(out), *s2,
                          os.path.join(SAMPLE, "dem.tif")], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=600)
    lines = [x for x in run.stdout.splitlines() if x.startswith("REPORT ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    plugin_dir = os.path.join(report["home_plugin_path"], "maestro")
    assert report["name"] == "maestro"
    assert plugin_dir.startswith(str(profile))
    assert report["installed"]["error"] in ("", None), report["installed"]
    assert report["metadata"] == {"min": "3.40", "max": "4.99"}
    assert report["compatible"] == {"3.40.6": True, "4.0.0": True, "4.2.1": True,
                                    "5.0.0": False}
    assert report["loaded"] and report["started"] and report["algorithm"]
    for module in ("engine", "engine.runner", "maestro_plugin"):
        assert report["modules"][module].startswith(plugin_dir), report["modules"]
    assert not report["training_loaded"]
    import rasterio

    with rasterio.open(report["output"]) as src:
        lc = src.read(1)
        assert (src.width, src.height) == (100, 101)
    assert ((lc != 255).mean() > 0.9) and len(np.unique(lc[lc != 255])) >= 2

    # the same profile through qgis_process (the installer enabled the plugin in it)
    out2 = tmp_path / "landcover_qgis_process.tif"
    run = subprocess.run(["qgis_process", "run", "maestro:segment", "--",
                          *[f"S2={p}" for p in s2], f"DEM={os.path.join(SAMPLE, 'dem.tif')}",
                          f"OUTPUT={out2}"],
                         cwd=str(tmp_path), env=dict(env, PATH=qgis_env["PATH"]),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with rasterio.open(out2) as src:
        assert np.array_equal(src.read(1), lc)
