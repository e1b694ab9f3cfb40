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
    """onnxruntime made unimportable: algorithms say what is missing in plain words; the
    dock shows it once, with no message bar before the user does anything, and still shows
    what the model needs."""
    import processing
    from qgis.core import Qgis, QgsProcessingException

    from maestro_plugin.dock import MaestroDock

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert [m for m, _ in deps.missing_dependencies()] == ["onnxruntime"]
    with pytest.raises(QgsProcessingException, match="onnxruntime is missing") as err:
        processing.run("maestro:segment", {"MODEL": tiny_models["segmentation"],
                                           "S2": rasters.s2[:1], "DEM": [rasters.dem],
                                           "OUTPUT": str(tmp_path / "x.tif")})
    text = str(err.value)
    assert deps.INSTALL_MENU_PATH in text
    assert "Error" not in text and "python3 -m pip" not in text  # no class names, no PEP 668 trap
    qgis_iface.messageBar().clear_messages()
    dock = MaestroDock(qgis_iface, None)
    try:
        bar = qgis_iface.messageBar()
        assert all(bar.get_messages(level) == [] for level in (
            Qgis.MessageLevel.Critical, Qgis.MessageLevel.Warning, Qgis.MessageLevel.Info))
        label = dock.deps_label.text()
        assert not dock.deps_label.isHidden() and "onnxruntime" in label
        assert "Install dependencies" in label and "Error" not in label
        assert not dock.install_button.isHidden()
        assert not dock.run_button.isEnabled()
        # what the default model needs, read without onnxruntime
        assert dock.meta is not None and set(dock.modality_inputs) == {"S2", "DEM"}
        assert "onnxruntime" not in dock.model_summary_text()
        dialog = dock.open_installer()
        assert "onnxruntime" in dialog.status_label.text()
        assert "pip install" in dialog.command_edit.text()
        assert "--target" in dialog.command_edit.text()  # allowed under PEP 668 (Debian)
        dialog.deleteLater()
    finally:
        dock.deleteLater()


def test_dock_works_right_after_install(monkeypatch, maestro, qgis_iface, tiny_models, rasters,
                                        tmp_path):
    """The installer (real pip, offline, a probe wheel standing in for onnxruntime's) ends
    with onnxruntime importable: the dock is ready at once, model and rows kept, and runs."""
    from qgis.core import Qgis, QgsProject, QgsRasterLayer

    from maestro_plugin.dock import MaestroDock
    from tests.plugin.test_dock import wait_for

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    dock = MaestroDock(qgis_iface, None)
    layers = []
    target = str(tmp_path / "deps")
    try:
        dock.set_model(tiny_models["segmentation"])
        for path in rasters.s2[:2] + [rasters.dem]:
            layer = QgsRasterLayer(path, os.path.basename(path), "gdal")
            QgsProject.instance().addMapLayer(layer)
            layers.append(layer.id())
        dock.modality_inputs["S2"].add_layers([QgsProject.instance().mapLayer(i)
                                               for i in layers[:2]])
        dock.modality_inputs["DEM"].add_layer(QgsProject.instance().mapLayer(layers[2]))
        assert not dock.run_button.isEnabled()
        wheel = make_wheel(str(tmp_path))
        python = deps.find_qgis_python()
        plan = deps.InstallPlan(python, target, (wheel,), tuple(deps.pip_install_command(
            python, target, ["--no-index", wheel])), ())
        from maestro_plugin.installer_dialog import InstallDependenciesDialog

        dialog = InstallDependenciesDialog(plan, dock)
        dialog.finished_install.connect(dock.dependencies_installed)
        dialog.start()
        monkeypatch.delitem(sys.modules, "onnxruntime")  # what pip's install achieves
        assert dialog.wait(120000), dialog.log_view.toPlainText()
        assert dialog.exit_code == 0
        assert "MAESTRO can run now" in dialog.status_label.text()
        assert dock.deps_label.isHidden() and dock.run_button.isEnabled()
        assert dock.meta.name == "tiny-segmentation"  # the model chosen before, kept
        assert dock.modality_inputs["S2"].layer_names() == ["S2_20150731.tif",
                                                            "S2_20150820.tif"]
        assert any("can run now" in m for m in
                   qgis_iface.messageBar().get_messages(Qgis.MessageLevel.Success))
        dock.output_widget.setFilePath(str(tmp_path / "after-install.tif"))
        assert dock.run()
        ok, payload, _ = wait_for(dock)
        assert ok, payload
    finally:
        sys.modules.pop("maestro_probe", None)
        if target in sys.path:
            sys.path.remove(target)
        dock.deleteLater()
        QgsProject.instance().removeAllMapLayers()


def test_installer_says_nothing_to_do_when_the_pinned_version_is_there(qgis_app, tmp_path):
    import onnxruntime

    from maestro_plugin.installer_dialog import InstallDependenciesDialog

    same = deps.plan_install([], gpu=False, python=sys.executable, target=str(tmp_path),
                             rasterio_platform=None, check_pip=False)
    assert deps.ONNXRUNTIME_CPU in same.packages
    dialog = InstallDependenciesDialog(same)
    try:
        text = dialog.status_label.text()
        if onnxruntime.__version__ == deps.pinned_onnxruntime(False):
            assert "Nothing to do" in text
        assert "upgrade" not in text.lower()
        assert dialog.install_button.text() == "Reinstall"
    finally:
        dialog.deleteLater()


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


def test_diagnostics_lists_versions_device_and_providers(maestro, qgis_app):
    from engine.api import SliceInput  # noqa: F401 (engine importable)
    from maestro_plugin import diagnostics
    from maestro_plugin.diagnostics_dialog import DiagnosticsDialog

    diagnostics.record_run(type("R", (), {"provider": "CPUExecutionProvider",
                                          "task": "segmentation", "seconds": 1.0})(), "m.onnx")
    info = diagnostics.collect()
    from osgeo import gdal
    from qgis.core import Qgis
    import onnxruntime

    assert info["plugin"] == f"MAESTRO for QGIS {diagnostics.plugin_version()}"
    assert diagnostics.plugin_version()[:1].isdigit()
    assert info["qgis"] == Qgis.version() and info["gdal (QGIS)"] == gdal.__version__
    assert info["onnxruntime"] == onnxruntime.__version__
    # the interpreter QGIS's Python is (its installation's), not the venv's or a shim
    python = deps.find_qgis_python()
    assert python in info["python"] and sys.version.split()[0] in info["python"]
    assert os.path.realpath(python).startswith(os.path.realpath(sys.base_prefix))
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh
                   if line.lower().startswith("model name"))
    assert info["cpu"].startswith(cpu) and "logical cores" in info["cpu"]
    assert info["gpu"] == "no NVIDIA GPU found"  # this machine
    assert "CPU (onnxruntime CPUExecutionProvider)" in info["providers MAESTRO can use"]
    assert "Azure" not in diagnostics.format_text(info)
    assert info["device of last run"].startswith("CPU (onnxruntime CPUExecutionProvider)")
    assert info["missing packages"] == "none" and "warning" not in info  # one GDAL here
    dialog = DiagnosticsDialog()
    try:
        text = dialog.text.toPlainText()
        assert "onnxruntime" in text and onnxruntime.__version__ in text
        assert "providers MAESTRO can use" in text and "device of last run" in text
    finally:
        dialog.deleteLater()


def test_qgis_python_is_the_installations_interpreter_not_sys_executable():
    """Under the venv (as under qgis_process) sys.executable is another interpreter:
    the installation's own comes first and is the one found."""
    version = tuple(sys.version_info[:2])
    candidates = deps.python_candidates()
    assert candidates[0] == os.path.join(sys.base_exec_prefix, "bin",
                                         f"python{version[0]}.{version[1]}")
    found = deps.find_qgis_python()
    assert found == candidates[0] and found != sys.executable
    assert deps.has_pip(found)
    # an interpreter of the same version from another installation is not taken
    with pytest.raises(RuntimeError):
        deps.find_qgis_python([sys.executable], version, base_prefix="/nonexistent")


def test_gpu_line_names_the_gpus_nvidia_smi_lists(monkeypatch, tmp_path, maestro):
    """The device line reads `nvidia-smi -L` (here a stand-in script printing its format,
    as this machine has no GPU) and says when onnxruntime has no CUDA for it."""
    from maestro_plugin import diagnostics

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n[ \"$1\" = -L ] || exit 2\n"
                   "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0f2d)'\n"
                   "echo 'GPU 1: NVIDIA L4 (UUID: GPU-9a1c)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert diagnostics.gpu_names() == ["NVIDIA H200", "NVIDIA L4"]
    info = diagnostics.collect()
    assert info["gpu"] == "NVIDIA H200; NVIDIA L4"
    assert "install onnxruntime-gpu" in info["providers MAESTRO can use"]  # CPU build here


def test_training_packages_are_pinned_as_in_requirements_and_optional(tmp_path):
    """scikit-learn and onnx: the installer's pins are requirements/runtime.txt's; they come
    only when asked for (the box), and then onnxruntime only when it is missing."""
    from tests.conftest import ROOT

    with open(os.path.join(ROOT, "requirements", "runtime.txt"), encoding="utf-8") as fh:
        pins = {line.strip() for line in fh if line.strip() and not line.startswith("#")}
    assert set(deps.TRAIN_PACKAGES) == {"scikit-learn==1.9.1", "onnx==1.23.2"} <= pins
    assert deps.ONNXRUNTIME_CPU in pins
    kw = dict(gpu=False, python="/usr/bin/python3", target=str(tmp_path), rasterio_platform=None,
              check_pip=False)
    plain = deps.plan_install(["onnxruntime"], **kw)
    assert not any(p.startswith(("scikit-learn", "onnx==")) for p in plain.packages)
    both = deps.plan_install(["onnxruntime"], train=True, **kw)
    assert {deps.ONNXRUNTIME_CPU, *deps.TRAIN_PACKAGES} <= set(both.packages)
    assert any("training your own classes" in n for n in both.notes)
    only = deps.plan_install([], train=True, **kw)       # onnxruntime is there: not again
    assert not any(p.startswith("onnxruntime") for p in only.packages)
    assert set(deps.TRAIN_PACKAGES) <= set(only.packages)
    assert not any(p.startswith("numpy") for p in only.packages)


def test_train_packages_add_only_the_dependencies_that_do_not_import(monkeypatch):
    """--no-deps: scikit-learn's and onnx's own dependencies are listed, but only those whose
    module is missing (QGIS's own scipy stays)."""
    monkeypatch.setitem(sys.modules, "joblib", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("joblib", "ml_dtypes") else real(name, *a))
    packages = deps.train_packages()
    assert packages[:2] == list(deps.TRAIN_PACKAGES)
    assert "joblib>=1.4.0" in packages and "ml_dtypes>=0.5.4" in packages
    assert not any(p.startswith(("scipy", "threadpoolctl", "numpy")) for p in packages)


def test_installer_installs_the_training_packages_offline(qgis_app, monkeypatch, tmp_path):
    """The installer's optional box, then real pip (offline: --no-index --find-links on
    stand-in wheels built here under the pinned names and versions) puts exactly those
    distributions into the target folder; the dialog ends ok once sklearn and onnx import."""
    from maestro_plugin.installer_dialog import InstallDependenciesDialog

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    target = str(tmp_path / "deps")
    python = deps.find_qgis_python()
    factory_calls = []

    def factory(train):
        factory_calls.append(train)
        return deps.plan_install([], gpu=False, python=python, target=target,
                                 rasterio_platform=None, check_pip=False, train=train,
                                 pip_options=("--no-index", "--find-links", str(wheels)))

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    dialog = InstallDependenciesDialog(parent=None, plan_factory=factory)
    outcome = []
    dialog.finished_install.connect(outcome.append)
    try:
        assert not dialog.train_check.isChecked() and factory_calls == [False]
        assert "scikit-learn" not in dialog.command_edit.text()
        dialog.train_check.setChecked(True)
        assert factory_calls == [False, True]
        command = dialog.command_edit.text()
        assert "scikit-learn==1.9.1" in command and "onnx==1.23.2" in command
        assert "onnxruntime" not in command               # installed here already
        assert dialog.status_label.text() == "Missing: scikit-learn, onnx."
        requested = [p for p in dialog.plan.packages]
        for requirement in requested:                     # a stand-in wheel for each
            name = deps._requirement_name(requirement).replace("-", "_")
            version = requirement.split("==")[1] if "==" in requirement else "99.0"
            make_wheel(str(wheels), name=name, version=version)
        dialog.start()
        monkeypatch.delitem(sys.modules, "sklearn")       # what the real wheels achieve
        monkeypatch.delitem(sys.modules, "onnx")
        assert dialog.wait(120000)
        log = dialog.log_view.toPlainText()
        assert dialog.exit_code == 0, log
        assert "Successfully installed" in log and "scikit-learn-1.9.1" in log.replace(
            "scikit_learn", "scikit-learn") and "onnx-1.23.2" in log
        installed = sorted(d for d in os.listdir(target) if d.endswith(".dist-info"))
        assert "scikit_learn-1.9.1.dist-info" in installed and "onnx-1.23.2.dist-info" in installed
        assert outcome == [True] and "can run now" in dialog.status_label.text()
    finally:
        for name in list(sys.modules):
            if name.startswith(("scikit_learn", "onnx_probe")):
                sys.modules.pop(name, None)
        if target in sys.path:
            sys.path.remove(target)
        dialog.deleteLater()
