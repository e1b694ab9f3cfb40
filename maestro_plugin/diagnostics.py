"""What the Diagnostics view shows: versions (QGIS, GDAL of QGIS and of rasterio,
onnxruntime, numpy, Python), execution providers available, and the last run's."""
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
    except Exception as exc:  # noqa: BLE001 (a missing package is what we report)
        return f"not available ({type(exc).__name__}: {exc})"


def collect() -> dict:
    """Everything the Diagnostics view lists, as plain strings/lists."""
    from . import deps

    info = {"python": f"{sys.version.split()[0]} ({sys.executable})"}
    try:
        from qgis.core import Qgis

        info["qgis"] = Qgis.version()
    except Exception as exc:  # noqa: BLE001
        info["qgis"] = f"not available ({exc})"
    info["gdal (QGIS)"] = _version("osgeo.gdal")
    info["gdal (rasterio)"] = _version("rasterio", "__gdal_version__")
    info["rasterio"] = _version("rasterio")
    info["numpy"] = _version("numpy")
    info["onnxruntime"] = _version("onnxruntime")
    try:
        from engine.session import available_providers

        info["providers available"] = ", ".join(available_providers()) or "none"
    except Exception as exc:  # noqa: BLE001
        info["providers available"] = f"unknown ({exc})"
    run = last_run()
    info["provider of last run"] = (f"{run['provider']} ({run['task']}, {run['when']})"
                                    if run else "no run yet in this session")
    info["missing packages"] = ", ".join(m for m, _ in deps.missing_dependencies()) or "none"
    info["dependencies folder"] = deps.deps_dir()
    info["nvidia gpu"] = "yes" if deps.has_nvidia_gpu() else "no"
    gq, gr = info["gdal (QGIS)"], info["gdal (rasterio)"]
    if gq[:1].isdigit() and gr[:1].isdigit() and gq != gr:
        info["warning"] = (f"rasterio uses GDAL {gr} while QGIS uses {gq}: two GDAL libraries "
                           "in one process (a pip rasterio wheel); prefer the platform's "
                           "python3-rasterio")
    return info


def format_text(info: dict) -> str:
    width = max(len(k) for k in info)
    return "\n".join(f"{k.ljust(width)} : {v}" for k, v in info.items())
