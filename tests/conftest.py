"""Shared fixtures: tiny models exported by our own training code (cached per session)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Path of a tiny exported model per task: {'segmentation': ..., ...}."""
    from tests.tiny_model import export_tiny

    out = tmp_path_factory.mktemp("tiny_models")
    return {task: _export(export_tiny, str(out / f"tiny-{task}.onnx"), task)
            for task in ("segmentation", "classification", "embedding")}


def _export(fn, path, task):
    fn(path, task=task)
    return path


@pytest.fixture(scope="session")
def qgis_env():
    """Environment for running qgis_process with the plugin enabled (as the Makefile sets)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["QGIS_PLUGINPATH"] = os.path.join(ROOT, ".qgis", "plugins")
    env["QGIS_CUSTOM_CONFIG_PATH"] = os.path.join(ROOT, ".qgis", "profile")
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([os.path.join(ROOT, ".qgis", "bin"), venv_bin,
                                   env.get("PATH", "")])
    if not os.path.exists(os.path.join(ROOT, ".qgis", "bin", "qgis_process")):
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "plugin-profile.sh")], check=True)
    assert shutil.which("qgis_process", path=env["PATH"]), "qgis_process not installed"
    return env


def load_plugin():
    """Load the repository as the QGIS plugin ``maestro`` the way QGIS does (import the
    package, ``classFactory(None)``, ``initProcessing()``); returns the plugin object."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("maestro", os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules["maestro"] = module
    spec.loader.exec_module(module)
    plugin = module.classFactory(None)
    plugin.initProcessing()
    return plugin


def run_qgis_process(env, *args, timeout=600):
    """Run qgis_process with args; returns CompletedProcess (text)."""
    return subprocess.run(["qgis_process", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
