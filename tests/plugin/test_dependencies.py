"""Runtime dependencies inside QGIS: finding QGIS's interpreter, what the installer plans,
the installer dialog running real pip (offline, on a wheel built here) with its log
streamed, the plugin loading and explaining itself when onnxruntime is missing, and the
Diagnostics view."""
from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile

import pytest

from maestro_plugin import deps
from tests.conftest import run_qgis_process


def make_wheel(folder, name="maestro_probe", version="1.0") -> str:
    """A minimal, valid pure-Python wheel (so pip runs offline)."""
    dist = f"{name}-{version}"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{dist}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: maestro-tests\nRoot-Is-Purelib: true\n"
                 "Tag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = os.path.join(folder, f"{dist}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for name_, text in files.items():
            zf.writestr(name_, text)
    return path


def test_qgis_python_found_when_sys_executable_is_qgis_itself():
    version = tuple(sys.version_info[:2])
    # Linux QGIS: sys.executable is /usr/bin/qgis; the interpreter lives in exec_prefix/bin
    candidates = deps.python_candidates(executable="/usr/bin/qgis", exec_prefix=sys.base_exec_prefix,
                                        version=version, system="Linux")
    assert "/usr/bin/qgis" not in candidates
    found = deps.find_qgis_python(candidates, version)
    assert os.path.basename(found).startswith("python") and os.path.isfile(found)
    # OSGeo4W: qgis-bin.exe; python.exe sits in the Python home (exec_prefix)
    win = deps.python_candidates(executable=r"C:\OSGeo4W\bin\qgis-bin.exe",
                                 exec_prefix=r"C:\OSGeo4W\apps\Python312", version=(3, 12),
                                 system="Windows")
    assert win[0] == os.path.join(r"C:\OSGeo4W\apps\Python312", "python.exe")
    with pytest.raises(RuntimeError, match="no Python 2.7 interpreter"):
        deps.find_qgis_python(candidates, (2, 7))


def test_plan_chooses_onnxruntime_by_gpu_and_rasterio_by_platform(tmp_path):
    target = str(tmp_path)
    cpu = deps.plan_install(["onnxruntime"], gpu=False, python="/usr/bin/python3", target=target,
                            rasterio_platform="sudo apt install python3-rasterio")
    assert deps.ONNXRUNTIME_CPU in cpu.packages and deps.ONNXRUNTIME_GPU not in cpu.packages
    assert cpu.command[:4] == ("/usr/bin/python3", "-m", "pip", "install")
    assert "--target" in cpu.command and target in cpu.command and "--no-deps" in cpu.command
    assert not any(p.startswith("numpy") for p in cpu.packages)  # QGIS's numpy stays
    gpu = deps.plan_install(["onnxruntime"], gpu=True, python="/usr/bin/python3", target=target,
                            rasterio_platform=None)
    assert deps.ONNXRUNTIME_GPU in gpu.packages and deps.ONNXRUNTIME_CPU not in gpu.packages
    # rasterio: the platform package where one exists, never pip there
    debian = deps.plan_install(["onnxruntime", "rasterio"], gpu=False, python="/usr/bin/python3",
                               target=target, rasterio_platform="sudo apt install python3-rasterio")
    assert not any(p.startswith("rasterio") for p in debian.packages)
    assert any("apt install python3-rasterio" in n for n in debian.notes)
    # no platform package: the wheel, and the installer says it brings a second GDAL
    other = deps.plan_install(["rasterio"], gpu=False, python="/usr/bin/python3", target=target,
                              rasterio_platform=None)
    assert deps.RASTERIO_WHEEL in other.packages
    assert any("its own GDAL" in n for n in other.notes)
    assert deps.platform_rasterio_package() == "sudo apt install python3-rasterio"  # Debian here
    assert deps.manual_command(cpu).startswith("/usr/bin/python3 -m pip install")


def test_installer_dialog_runs_pip_and_streams_its_log(qgis_app, tmp_path):
    from maestro_plugin.installer_dialog import InstallDependenciesDialog

    wheel = make_wheel(str(tmp_path))
    target = str(tmp_path / "deps")
    python = deps.find_qgis_python()
    plan = deps.InstallPlan(python, target, (wheel,),
                            tuple(deps.pip_install_command(python, target, ["--no-index", wheel])),
                            ("test plan",))
    dialog = InstallDependenciesDialog(plan)
    outcome = []
    dialog.finished_install.connect(outcome.append)
    try:
        dialog.start()
        assert dialog.wait(120000)
        log = dialog.log_view.toPlainText()
        assert dialog.exit_code == 0, log
        assert log.startswith("$ " + python) and "Successfully installed maestro-probe-1.0" in log
        assert outcome == [True]
        assert sys.path.index(target) > sys.path.index(os.path.dirname(os.__file__))
        import maestro_probe

        assert maestro_probe.VALUE == 42
    finally:
        sys.modules.pop("maestro_probe", None)
        if target in sys.path:
            sys.path.remove(target)
        dialog.deleteLater()


def test_missing_onnxruntime_in_process(monkeypatch, maestro, qgis_iface, tiny_models, rasters,
                                        tmp_path):
    """onnxruntime made unimportable: algorithms and the dock say what is missing."""
    import processing
    from qgis.core import QgsProcessingException

    from maestro_plugin.dock import MaestroDock

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert [m for m, _ in deps.missing_dependencies()] == ["onnxruntime"]
    with pytest.raises(QgsProcessingException, match="onnxruntime is missing"):
        processing.run("maestro:segment", {"MODEL": tiny_models["segmentation"],
                                           "S2": rasters.s2[:1], "DEM": [rasters.dem],
                                           "OUTPUT": str(tmp_path / "x.tif")})
    dock = MaestroDock(qgis_iface, None)
    try:
        assert not dock.deps_label.isHidden() and "onnxruntime" in dock.deps_label.text()
        assert not dock.run_button.isEnabled()
        dialog = dock.open_installer()
        assert "onnxruntime" in dialog.status_label.text()
        assert "pip install" in dialog.command_edit.text()
        dialog.deleteLater()
    finally:
        dock.deleteLater()


def test_plugin_loads_without_onnxruntime_in_qgis_process(qgis_env, tiny_models, rasters,
                                                          tmp_path):
    """qgis_process with Debian's Python only (no venv: no onnxruntime): the provider is
    there and the run fails with what to install, not with a traceback."""
    venv_bin = os.path.dirname(sys.executable)
    env = dict(qgis_env)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    env[deps.ENV_DEPS_DIR] = str(tmp_path / "empty-deps")
    run = run_qgis_process(env, "run", "maestro:segment", "--",
                           f"MODEL={tiny_models['segmentation']}", f"S2={rasters.s2[0]}",
                           f"DEM={rasters.dem}", f"OUTPUT={tmp_path / 'x.tif'}")
    text = run.stdout + run.stderr
    assert run.returncode == 1, text
    assert "onnxruntime is missing" in text and "Install dependencies" in text
    assert "Traceback" not in text


def test_diagnostics_lists_versions_and_providers(maestro, qgis_app):
    from engine.api import SliceInput  # noqa: F401 (engine importable)
    from maestro_plugin import diagnostics
    from maestro_plugin.diagnostics_dialog import DiagnosticsDialog

    diagnostics.record_run(type("R", (), {"provider": "CPUExecutionProvider",
                                          "task": "segmentation", "seconds": 1.0})(), "m.onnx")
    info = diagnostics.collect()
    from osgeo import gdal
    from qgis.core import Qgis
    import onnxruntime

    assert info["qgis"] == Qgis.version() and info["gdal (QGIS)"] == gdal.__version__
    assert info["onnxruntime"] == onnxruntime.__version__
    assert "CPUExecutionProvider" in info["providers available"]
    assert info["provider of last run"].startswith("CPUExecutionProvider (segmentation")
    assert info["missing packages"] == "none" and "warning" not in info  # one GDAL here
    dialog = DiagnosticsDialog()
    try:
        text = dialog.text.toPlainText()
        assert "onnxruntime" in text and onnxruntime.__version__ in text
        assert "providers available" in text and "provider of last run" in text
    finally:
        dialog.deleteLater()
