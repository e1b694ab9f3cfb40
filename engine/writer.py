"""Output rasters written window by window to a temporary tiled GeoTIFF, then (optionally)
converted to a Cloud-Optimized GeoTIFF with GDAL's COG driver and renamed into place.

Until :meth:`RasterWriter.commit` succeeds, nothing exists under the final name: an error
or a cancel removes the temporary files (:meth:`RasterWriter.abort`).

Temporary files are hidden names beside the output that carry their writer's host and
process id, ``.<name>.<host>-<pid>-<random>.part.tif`` (and ``.cog.tif``, GDAL's
``.ovr.tmp`` and ``.aux.xml`` beside them). A process killed outright (SIGKILL, power cut)
cannot remove them, so every new writer removes, in its folder, those whose process is gone
(:func:`remove_stale_temporaries`); a running process's files are never touched.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from typing import Mapping, Sequence

import numpy as np

from .contract import ClassSpec
from .errors import OutputError
from .tasks.spec import CLASS_NODATA  # nodata of class rasters (uint8); float rasters use NaN

BLOCK = 256


#: This machine in temporary names: 6 hex digits of the sha1 of its host name.
HOST_ID = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_TEMP_RE = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{4}"
                      r"\.(?:part|cog)\.tif(?:\..+)?$")


def temporary_tag() -> str:
    """``<host>-<pid>-<random>``: the part of a temporary name that tells its owner."""
    return f"{HOST_ID}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` of this machine runs, and (with ``since``, a time.time())
    was already running then (a newer process reusing the id does not count).

    Without psutil on Windows the answer is True (never remove what might be in use).
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            return since is None or proc.create_time() <= since + 1.0
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str) -> list[str]:
    """Remove the writer temporaries in ``folder`` left by dead processes of this machine.

    A file is stale when its name carries this machine's host id and a process id that no
    longer runs (or that was started after the file was last written). Files of other
    machines (a shared folder) and of running processes are kept.

    Returns:
        The paths removed.
    """
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_RE.match(name) if name.startswith(".") else None
        if not m or m.group("host") != HOST_ID:
            continue
        path = os.path.join(folder, name)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if int(m.group("pid")) == os.getpid() or process_alive(int(m.group("pid")), mtime):
            continue
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def check_writable(path: str) -> None:
    """Raise OutputError unless a file can be created beside ``path``."""
    if not str(path).strip():
        raise OutputError("no output file given (empty path)")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write '{path}': folder '{folder}' is not writable")
    if os.path.isdir(path):
        raise OutputError(f"cannot write '{path}': it is a folder")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write '{path}': the existing file is read-only")


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


class RasterWriter:
    """One output raster.

    Args:
        path: final file name.
        width, height, count, dtype: raster shape and type (``uint8`` or ``float32``).
        crs, transform: georeferencing (rasterio objects).
        cog: convert to COG on commit.
        classes: for class rasters, the colour table and category names.
        band_names: band descriptions (e.g. class names of multilabel scores).
    """

    def __init__(self, path: str, width: int, height: int, count: int, dtype: str, crs, transform,
                 cog: bool = True, classes: Sequence[ClassSpec] = (),
                 band_names: Sequence[str] = ()):
        import rasterio

        check_writable(path)
        self.path = os.path.abspath(path)
        self.cog = cog
        self.classes = tuple(classes)
        self.dtype = dtype
        self.nodata = CLASS_NODATA if dtype == "uint8" else float("nan")
        folder, base = os.path.split(self.path)
        self.removed_stale = remove_stale_temporaries(folder)
        tag = temporary_tag()
        self._tmp = os.path.join(folder, f".{base}.{tag}.part.tif")
        self._tmp_cog = os.path.join(folder, f".{base}.{tag}.cog.tif")
        profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=dtype,
                       crs=crs, transform=transform, nodata=self.nodata, tiled=True,
                       blockxsize=BLOCK, blockysize=BLOCK, BIGTIFF="IF_SAFER",
                       compress="deflate")
        if cog:  # only read back once by the COG conversion: the fastest deflate level
            profile["zlevel"] = 1
        try:
            self._dst = rasterio.open(self._tmp, "w", **profile)
        except Exception as exc:
            raise OutputError(f"cannot write '{path}': {exc}") from exc
        if self.classes:
            cmap = {c.id: (*_hex_rgb(c.color), 255) for c in self.classes}
            cmap[CLASS_NODATA] = (0, 0, 0, 0)
            self._dst.write_colormap(1, cmap)
        for i, name in enumerate(band_names, start=1):
            self._dst.set_band_description(i, name)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Dataset metadata items of the output (kept by the COG conversion)."""
        try:
            self._dst.update_tags(**{k: str(v) for k, v in tags.items()})
        except Exception as exc:
            raise OutputError(f"writing the metadata of '{self.path}' failed: {exc}") from exc

    def write_rows(self, row: int, data: np.ndarray) -> None:
        """Write ``data`` [count, h, w] (full width) at output row ``row``."""
        from rasterio.windows import Window

        try:
            self._dst.write(data.astype(self.dtype, copy=False),
                            window=Window(0, row, data.shape[2], data.shape[1]))
        except Exception as exc:
            raise OutputError(f"writing '{self.path}' failed: {exc}") from exc

    def commit(self) -> str:
        """Finish the file (COG when asked), add category names, rename into place."""
        try:
            self._dst.close()
            final_tmp = self._tmp
            if self.cog:
                self._to_cog()
                final_tmp = self._tmp_cog
            if self.classes:
                self._set_category_names(final_tmp)
            aux = self.path + ".aux.xml"
            if os.path.exists(final_tmp + ".aux.xml"):
                os.replace(final_tmp + ".aux.xml", aux)
            elif os.path.exists(aux):
                os.remove(aux)  # a stale sidecar would describe another raster
            os.replace(final_tmp, self.path)
        except OutputError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise OutputError(f"finishing '{self.path}' failed: {exc}") from exc
        finally:
            self._remove(self._tmp)
        return self.path

    def _to_cog(self) -> None:
        from osgeo import gdal

        gdal.UseExceptions()
        resampling = "NEAREST" if self.dtype == "uint8" else "AVERAGE"
        options = ["COMPRESS=DEFLATE", "BLOCKSIZE=512", "OVERVIEWS=AUTO",
                   f"RESAMPLING={resampling}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]
        if self.dtype == "float32":
            options.append("PREDICTOR=YES")
        result = gdal.Translate(self._tmp_cog, self._tmp, format="COG", creationOptions=options)
        if result is None:
            raise OutputError(f"COG conversion of '{self.path}' failed: {gdal.GetLastErrorMsg()}")
        result = None  # close

    def _set_category_names(self, path: str) -> None:
        from osgeo import gdal

        gdal.UseExceptions()
        ds = gdal.Open(path)  # read-only: GDAL keeps category names in the .aux.xml sidecar
        names = [""] * (CLASS_NODATA + 1)
        for c in self.classes:
            names[c.id] = c.name
        while names and not names[-1]:
            names.pop()
        ds.GetRasterBand(1).SetCategoryNames(names)
        ds = None

    @staticmethod
    def _remove(path: str) -> None:
        for p in (path, path + ".aux.xml"):
            if os.path.exists(p):
                try:
                    os.remove(p)
                except OSError:
                    pass

    def abort(self) -> None:
        """Close and delete the temporary files; the final name is left untouched."""
        try:
            if not self._dst.closed:
                self._dst.close()
        except Exception:
            pass
        self._remove(self._tmp)
        self._remove(self._tmp_cog)
