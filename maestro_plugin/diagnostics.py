"""What the Diagnostics view shows: the plugin's version, QGIS, the Python interpreter QGIS
runs, versions (GDAL of QGIS and of rasterio, onnxruntime, numpy), the device (CPU model,
NVIDIA GPU), the execution providers MAESTRO can use and the one the last run used."""
from __future__ import annotations

import datetime
import sys
import threading

_LOCK = threading.Lock()
_LAST_RUN: dict = {}


def record_run(report, model_path: str = "") -> None:
    """Remember the last successful run (algorithms and dock call this)."""
    with _LOCK:
        _LAST_RUN.clear()
        _LAST_RUN.update(provider=getattr(report, "provider", ""), task=getattr(report, "task", ""),
                         seconds=getattr(report, "seconds", None), model=model_path,
                         when=datetime.datetime.now().isoformat(timespec="seconds"))


def last_run() -> dict:
    with _LOCK:
        return dict(_LAST_RUN)


def _version(module: str, attr: str = "__version__") -> str:
    try:
        mod = __import__(module, fromlist=["_"])
        return str(getattr(mod, attr))
    except ImportError:  # a missing package is what we report
        return "not installed"
    except Exception as exc:  # noqa: BLE001
        return f"not usable ({exc})"


#: the execution providers MAESTRO's engine uses (engine/session.py): CUDA first when
#: asked and available, CPU always. Others in an onnxruntime build are not used.
USED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def plugin_version() -> str:
    """``version=`` of the plugin's metadata.txt ('unknown' when unreadable)."""
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "metadata.txt")
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip().lower().startswith("version="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cpu_model() -> str:
    """The CPU's name (Linux /proc/cpuinfo 'model name', else platform.processor()) and
    the number of logical cores."""
    import os
    import platform

    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    return f"{name}, {os.cpu_count() or '?'} logical cores"


def gpu_names() -> list[str]:
    """NVIDIA GPUs as ``nvidia-smi -L`` names them ([] without a driver)."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(UUID")[0].strip() for line in out.stdout.splitlines()
            if line.startswith("GPU") and ":" in line] if out.returncode == 0 else []


def describe_provider(provider: str) -> str:
    """``CPUExecutionProvider`` -> ``CPU (onnxruntime CPUExecutionProvider)``."""
    words = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "GPU (CUDA)"}
    return f"{words.get(provider, provider)} (onnxruntime {provider})" if provider else "none"


def collect() -> dict:
    """Everything the Diagnostics view lists, as plain strings."""
    from . import deps

    info = {"plugin": f"MAESTRO for QGIS {plugin_version()}"}
    try:
        from qgis.core import Qgis

        info["qgis"] = Qgis.version()
    except Exception as exc:  # noqa: BLE001
        info["qgis"] = f"not available ({exc})"
    try:
        python = deps.find_qgis_python()
    except RuntimeError:
        python = "no matching interpreter found"
    info["python"] = f"{sys.version.split()[0]}, interpreter {python}"
    if sys.executable and sys.executable != python:
        info["sys.executable"] = f"{sys.executable} (not used: QGIS embeds Python)"
    info["gdal (QGIS)"] = _version("osgeo.gdal")
    info["gdal (rasterio)"] = _version("rasterio", "__gdal_version__")
    info["rasterio"] = _version("rasterio")
    info["numpy"] = _version("numpy")
    info["onnxruntime"] = _version("onnxruntime")
    gpus = gpu_names()
    info["cpu"] = cpu_model()
    info["gpu"] = "; ".join(gpus) if gpus else "no NVIDIA GPU found"
    try:
        from engine.session import available_providers

        available = available_providers()
    except Exception as exc:  # noqa: BLE001
        available = None
        info["providers MAESTRO can use"] = f"unknown ({exc})"
    if available is not None:
        usable = [p for p in USED_PROVIDERS if p in available]
        info["providers MAESTRO can use"] = (", ".join(describe_provider(p) for p in usable)
                                             or "none (onnxruntime is not installed)")
        if gpus and "CUDAExecutionProvider" not in available:
            info["providers MAESTRO can use"] += ("; a GPU is present but this onnxruntime has no "
                                                  "CUDA: install onnxruntime-gpu to use it")
    run = last_run()
    info["device of last run"] = (f"{describe_provider(run['provider'])}, {run['task']}, "
                                  f"{run['when']}" if run else "no run yet in this session")
    info["missing packages"] = ", ".join(m for m, _ in deps.missing_dependencies()) or "none"
    info["dependencies folder"] = deps.deps_dir()
    gq, gr = info["gdal (QGIS)"], info["gdal (rasterio)"]
    if gq[:1].isdigit() and gr[:1].isdigit() and gq != gr:
        info["warning"] = (f"rasterio uses GDAL {gr} while QGIS uses {gq}: two GDAL libraries "
                           "in one process (a pip rasterio wheel); prefer the platform's "
                           "python3-rasterio")
    return info


def format_text(info: dict) -> str:
    width = max(len(k) for k in info)
    return "\n".join(f"{k.ljust(width)} : {v}" for k, v in info.items())
