"""Runtime dependencies of the engine inside QGIS's Python: what is missing, which
interpreter QGIS runs, where the plugin installs packages, and the pip command.

No qgis import at module level (the folder for installed packages comes from QGIS's
profile only when asked) so that this module is testable and importable anywhere.

Rules (see README "Dependencies inside QGIS"):
- onnxruntime comes from pip: ``onnxruntime-gpu`` where an NVIDIA GPU is present,
  ``onnxruntime`` otherwise, installed with ``--target`` into a folder that the plugin
  *appends* to ``sys.path`` (QGIS's own numpy, GDAL and rasterio stay first).
- rasterio comes from the platform's package where one exists (Debian/Ubuntu
  ``python3-rasterio``, OSGeo4W ``python3-rasterio``), never from pip there: a pip rasterio
  wheel carries its own GDAL, a second GDAL in QGIS's process. Only where no platform
  package exists does the installer fall back to the wheel, and it says so.
"""
from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

#: pins, kept equal to requirements/runtime.txt; onnxruntime-gpu stops at 1.31.1.
ONNXRUNTIME_CPU = "onnxruntime==1.32.0"
ONNXRUNTIME_GPU = "onnxruntime-gpu==1.31.1"
#: onnxruntime's own dependencies, installed with it; numpy is deliberately absent: it is
#: QGIS's (a second numpy in the target folder would never be imported, as the folder is
#: appended to sys.path, so pip must not fetch one: see pip_install_command).
ONNXRUNTIME_DEPS = ("flatbuffers", "packaging", "protobuf>=4.25.8")
RASTERIO_WHEEL = "rasterio==1.4.3"
#: optional: what maestro:train_classes (and the dock's Train part) needs besides the engine,
#: pinned as in requirements/runtime.txt.
TRAIN_PACKAGES = ("scikit-learn==1.9.1", "onnx==1.23.2")
#: their own dependencies (lower bounds from the packages' metadata), each installed only
#: when its module does not import already (QGIS's Python often has scipy): module -> pip name
TRAIN_PACKAGE_DEPS = (("scipy", "scipy>=1.10.0"), ("joblib", "joblib>=1.4.0"),
                      ("threadpoolctl", "threadpoolctl>=3.5.0"), ("narwhals", "narwhals>=2.0.1"),
                      ("cloudpickle", "cloudpickle>=3.0"),
                      ("typing_extensions", "typing_extensions>=4.7.1"),
                      ("ml_dtypes", "ml_dtypes>=0.5.4"), ("google.protobuf", "protobuf>=6.31.1"))
ENV_DEPS_DIR = "MAESTRO_DEPS_DIR"
#: where the installer is in QGIS (maestro_plugin/plugin.py adds it there: Raster menu,
#: submenu MENU_NAME) and in the dock (a button).
MENU_NAME = "MAESTRO land cover"
INSTALL_MENU_PATH = f"Raster > {MENU_NAME} > Install dependencies…"
INSTALL_HINT = (f"click 'Install dependencies…' in the MAESTRO panel (or {INSTALL_MENU_PATH}): "
                "it installs into your QGIS profile, no administrator rights needed")


@dataclass(frozen=True)
class Dependency:
    """A module the engine needs at run time."""

    module: str
    purpose: str


DEPENDENCIES = (
    Dependency("numpy", "arrays"),
    Dependency("onnxruntime", "running the ONNX models"),
    Dependency("rasterio", "reading and writing rasters (GDAL)"),
)


#: optional, for training your own classes: module -> pip package (its name for the user)
TRAIN_DEPENDENCIES = (
    Dependency("sklearn", "fitting the head and the random forest (scikit-learn)"),
    Dependency("onnx", "writing the new model file"),
)
PIP_NAMES = {"sklearn": "scikit-learn"}


def missing_dependencies(dependencies=DEPENDENCIES) -> list[tuple[str, str]]:
    """(module, why it failed) for each dependency that does not import.

    Args:
        dependencies: what to check (default: the engine's; :data:`TRAIN_DEPENDENCIES` for
            training).

    Any exception counts (a DLL that fails to load raises OSError, not ImportError).
    """
    missing = []
    for dep in dependencies:
        try:
            importlib.import_module(dep.module)
        except Exception as exc:  # noqa: BLE001 (any failure means unusable)
            missing.append((dep.module, f"{type(exc).__name__}: {exc}"))
    return missing


def missing_message(missing: list[tuple[str, str]]) -> str:
    """What to tell the user (algorithms raise it, the dock shows it): the packages, and
    the plugin's installer (pip ``--target`` into the profile, which PEP 668 systems such
    as Debian 12 allow, unlike a plain ``pip install``). The technical reason of each
    failure goes to the log, not here."""
    names = ", ".join(m for m, _ in missing)
    many = len(missing) > 1
    text = (f"MAESTRO cannot run yet: the Python package{'s' if many else ''} {names} "
            f"{'are' if many else 'is'} missing from QGIS's Python. To install: {INSTALL_HINT}.")
    if any(m == "rasterio" for m, _ in missing):
        where = platform_rasterio_package()
        if where:
            text += f" rasterio comes from your system: {where}."
    return text


def missing_train_dependencies() -> list[tuple[str, str]]:
    """(module, why) for the optional training packages (scikit-learn, onnx) missing."""
    return missing_dependencies(TRAIN_DEPENDENCIES)


def pip_name(module: str) -> str:
    """The package name a user installs (``sklearn`` -> ``scikit-learn``)."""
    return PIP_NAMES.get(module, module)


def missing_train_message(missing: list[tuple[str, str]]) -> str:
    """What the Train part says when scikit-learn or onnx does not import: which packages,
    and how to get them (the installer's optional box, or pip by hand)."""
    names = ", ".join(pip_name(m) for m, _ in missing)
    many = len(missing) > 1
    pins = " ".join(p for p in TRAIN_PACKAGES
                    if p.split("==")[0] in {pip_name(m) for m, _ in missing})
    return (f"Training your own classes needs the Python package{'s' if many else ''} {names}, "
            f"which {'are' if many else 'is'} not installed in QGIS's Python. To install: click "
            "'Install training packages…' (the installer with 'Also install the packages for "
            f"training your own classes' ticked), or by hand with QGIS's Python: pip install "
            f"--no-deps --target {deps_dir()} {pins} (and their dependencies). Everything else "
            f"in MAESTRO works without {'them' if many else 'it'}.")


def train_packages() -> list[str]:
    """pip requirements for training: the two pins plus those of their dependencies whose
    module does not import here (pip runs ``--no-deps``)."""
    import importlib.util

    out = list(TRAIN_PACKAGES)
    for module, requirement in TRAIN_PACKAGE_DEPS:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(requirement)
    return out


def _requirement_name(requirement: str) -> str:
    """``protobuf>=6.31.1`` -> ``protobuf``."""
    import re

    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def deps_dir() -> str:
    """Folder the plugin installs packages into and appends to ``sys.path``.

    ``$MAESTRO_DEPS_DIR`` if set, else ``<QGIS profile>/python/maestro-deps``, else
    ``~/.maestro-qgis/python-deps`` when QGIS is not importable.
    """
    if os.environ.get(ENV_DEPS_DIR):
        return os.environ[ENV_DEPS_DIR]
    try:
        from qgis.core import QgsApplication

        base = QgsApplication.qgisSettingsDirPath()
        if base:
            return os.path.join(base, "python", "maestro-deps")
    except Exception:  # noqa: BLE001 (outside QGIS)
        pass
    return os.path.join(os.path.expanduser("~"), ".maestro-qgis", "python-deps")


def add_deps_dir_to_path(path: str | None = None) -> str:
    """Append the deps folder to ``sys.path`` (after QGIS's own packages) once."""
    path = path or deps_dir()
    if path not in sys.path:
        sys.path.append(path)
    importlib.invalidate_caches()
    return path


def _python_info(candidate: str) -> tuple[tuple[int, int], str] | None:
    """((major, minor), sys.base_prefix) of an interpreter, None when it does not run."""
    code = "import sys; print(*sys.version_info[:2]); print(sys.base_prefix)"
    try:
        out = subprocess.run([candidate, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        first, base = out.stdout.splitlines()[:2]
        major, minor = (int(x) for x in first.split())
    except ValueError:
        return None
    return (major, minor), base.strip()


def _python_version_of(candidate: str) -> tuple[int, int] | None:
    info = _python_info(candidate)
    return info[0] if info else None


def python_candidates(executable: str | None = None, exec_prefix: str | None = None,
                      version: tuple[int, int] | None = None, system: str | None = None) -> list[str]:
    """Interpreters that may be the one QGIS embeds, most likely first.

    QGIS embeds Python as a library: inside QGIS ``sys.executable`` is often QGIS itself
    (``qgis-bin.exe`` on Windows, ``QGIS`` in the macOS bundle, ``/usr/bin/qgis`` on
    Linux), and under qgis_process whatever ``python3`` is first on PATH (a virtual
    environment, pyenv...). The interpreter built from the same installation is the one
    in ``sys.base_exec_prefix`` (OSGeo4W: ``<prefix>/python.exe``; macOS bundle and Linux:
    ``<prefix>/bin/python3.X``), so that one comes first; ``sys.executable`` only after it.
    """
    executable = sys.executable if executable is None else executable
    exec_prefix = exec_prefix or sys.base_exec_prefix
    major, minor = version or sys.version_info[:2]
    system = system or platform.system()
    if system == "Windows":
        names = [os.path.join(exec_prefix, "python.exe"), os.path.join(exec_prefix, "python3.exe")]
    else:
        names = [os.path.join(exec_prefix, "bin", f"python{major}.{minor}"),
                 os.path.join(exec_prefix, "bin", f"python{major}"),
                 os.path.join(exec_prefix, "bin", "python3")]
    base = getattr(sys, "_base_executable", None)
    if (base and os.path.basename(base).lower().startswith("python")
            and executable == sys.executable):
        names.append(base)
    if os.path.basename(executable or "").lower().startswith("python"):
        names.append(executable)
    which = shutil.which(f"python{major}.{minor}")
    if which:
        names.append(which)
    seen, out = set(), []
    for name in names:
        if name and name not in seen:
            seen.add(name)
            out.append(name)
    return out


def find_qgis_python(candidates: list[str] | None = None,
                     version: tuple[int, int] | None = None,
                     base_prefix: str | None = None) -> str:
    """The first candidate that exists, runs the same Python major.minor as QGIS and, when
    ``base_prefix`` is known (default: this process's ``sys.base_prefix`` when
    ``candidates`` is None), belongs to the same installation.

    Raises:
        RuntimeError: none found (the message lists what was tried).
    """
    version = version or tuple(sys.version_info[:2])
    if candidates is None:
        candidates = python_candidates()
        base_prefix = base_prefix or sys.base_prefix
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        info = _python_info(candidate)
        if info is None or info[0] != tuple(version):
            continue
        if base_prefix and os.path.realpath(info[1]) != os.path.realpath(base_prefix):
            continue
        return candidate
    raise RuntimeError(
        f"no Python {version[0]}.{version[1]} interpreter matching QGIS's was found "
        f"(tried: {', '.join(candidates) or 'nothing'})")


def has_pip(python: str) -> bool:
    """True when ``python -m pip`` runs."""
    try:
        out = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def installed_onnxruntime() -> str | None:
    """Version of the onnxruntime QGIS's Python imports, None when it does not import."""
    try:
        import onnxruntime

        return str(onnxruntime.__version__)
    except Exception:  # noqa: BLE001 (missing or broken: not installed for our purpose)
        return None


def pinned_onnxruntime(gpu: bool) -> str:
    """The version the installer puts in (``1.32.0``)."""
    return (ONNXRUNTIME_GPU if gpu else ONNXRUNTIME_CPU).split("==")[1]


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA driver reports a GPU (``nvidia-smi -L`` or the Linux driver's
    /proc entry)."""
    if os.path.isdir("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"):
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def platform_rasterio_package() -> str | None:
    """How the platform provides rasterio with QGIS's own GDAL, or None where it does not.

    Returns a short instruction ("apt install python3-rasterio", ...).
    """
    if os.environ.get("OSGEO4W_ROOT") or "osgeo4w" in sys.prefix.lower():
        return "the OSGeo4W installer (Advanced install > Libs > python3-rasterio)"
    if os.path.exists("/etc/debian_version"):
        return "sudo apt install python3-rasterio"
    if os.path.exists("/etc/fedora-release"):
        return "sudo dnf install python3-rasterio"
    return None


@dataclass(frozen=True)
class InstallPlan:
    """What 'Install dependencies' will do.

    Attributes:
        python: the interpreter pip runs with.
        target: folder packages go into.
        packages: pip requirement strings.
        command: the full pip command (list) or None when nothing is for pip.
        notes: sentences to show before running (GPU choice, rasterio advice, warnings).
    """

    python: str
    target: str
    packages: tuple[str, ...]
    command: tuple[str, ...] | None
    notes: tuple[str, ...]


def pip_install_command(python: str, target: str, packages: list[str]) -> list[str]:
    """pip into ``target`` without dependencies (those are listed explicitly), so that no
    second numpy or GDAL lands in QGIS's process."""
    return [python, "-m", "pip", "install", "--upgrade", "--no-deps", "--target", target,
            "--disable-pip-version-check", "--no-input", *packages]


def plan_install(missing: list[str] | None = None, gpu: bool | None = None,
                 python: str | None = None, target: str | None = None,
                 rasterio_platform: str | None | bool = False,
                 check_pip: bool = True, train: bool = False,
                 pip_options: tuple[str, ...] = ()) -> InstallPlan:
    """Decide what to install.

    Args:
        missing: modules missing (default: :func:`missing_dependencies`).
        gpu: NVIDIA GPU present (default: :func:`has_nvidia_gpu`).
        python: interpreter (default: :func:`find_qgis_python`).
        target: folder (default: :func:`deps_dir`).
        rasterio_platform: platform package instruction, None when there is none
            (default: :func:`platform_rasterio_package`).
        check_pip: add a note when ``python -m pip`` does not run.
        train: also install the optional packages for training your own classes
            (:func:`train_packages`); onnxruntime is then installed only when missing.
        pip_options: extra pip options put before the packages (tests: ``--no-index``,
            ``--find-links``).
    """
    if missing is None:
        missing = [m for m, _ in missing_dependencies()]
    gpu = has_nvidia_gpu() if gpu is None else gpu
    target = target or deps_dir()
    if rasterio_platform is False:
        rasterio_platform = platform_rasterio_package()
    notes, packages = [], []
    if "numpy" in missing:
        notes.append("numpy is missing: QGIS's Python normally ships it; install your "
                     "platform's python3-numpy (pip would install numpy<2 into the folder).")
        packages.append("numpy<2")
    if "onnxruntime" in missing or (not missing and not train):
        if gpu:
            packages.append(ONNXRUNTIME_GPU)
            notes.append("An NVIDIA GPU was found: installing onnxruntime-gpu (CUDA 12 and "
                         "cuDNN 9 must be installed for the CUDA provider; CPU always works).")
        else:
            packages.append(ONNXRUNTIME_CPU)
            notes.append("No NVIDIA GPU found: installing onnxruntime (CPU).")
        packages.extend(ONNXRUNTIME_DEPS)
    if "rasterio" in missing:
        if rasterio_platform:
            notes.append("rasterio is missing: install it from your platform so that it uses "
                         f"QGIS's own GDAL: {rasterio_platform}. It is not installed with pip "
                         "here (a pip wheel brings a second GDAL into QGIS).")
        else:
            packages.extend([RASTERIO_WHEEL, "affine", "attrs", "certifi", "click", "cligj",
                             "click-plugins", "pyparsing"])
            notes.append("rasterio is missing and this platform has no rasterio package built "
                         "on QGIS's GDAL: installing the pip wheel, which brings its own GDAL "
                         "library (a second GDAL in QGIS's process). MAESTRO's tests check that "
                         "the engine reads and writes correctly this way.")
    if train:
        for requirement in train_packages():  # the stricter bound replaces onnxruntime's
            name = _requirement_name(requirement)
            packages = [p for p in packages if _requirement_name(p) != name] + [requirement]
        notes.append("Also installing the packages for training your own classes: "
                     + ", ".join(TRAIN_PACKAGES) + " (about 60 MB).")
    try:
        python = python or find_qgis_python()
    except RuntimeError as exc:
        notes.append(f"Cannot run pip: {exc}.")
        return InstallPlan("", target, tuple(packages), None, tuple(notes))
    if packages and check_pip and not has_pip(python):
        notes.append(f"pip is not installed for QGIS's Python ({python}): install it first "
                     "(Debian/Ubuntu: sudo apt install python3-pip), then click Install.")
    command = (tuple(pip_install_command(python, target, [*pip_options, *packages]))
               if packages else None)
    return InstallPlan(python, target, tuple(packages), command, tuple(notes))


def manual_command(plan: InstallPlan) -> str:
    """The plan as one shell command line (the README gives the same)."""
    import shlex

    if not plan.command:
        return ""
    return " ".join(shlex.quote(part) for part in plan.command)
