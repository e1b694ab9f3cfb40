"""Output path safety: refuse, before any work, an output that is one of the inputs or
another output.

Two paths name the same file when, after resolving symbolic links and ``..``
(``os.path.realpath``), they are equal, or when both exist and are the same inode
(``os.path.samefile``: hard links, and case variants on a case-insensitive file system).
An output that does not exist yet is compared by its resolved path; on Windows and macOS,
whose default file systems ignore case, the comparison also ignores case.

A raster input is expanded to the files GDAL reads for it (``rasterio`` ``dataset.files``:
a VRT's sources, world files, sidecars), so that an output cannot replace the source of a
VRT mosaic either.

Used by ``engine.api.run_model`` (so by the CLI, the batch tasks and the Processing
algorithms), ``engine.cli`` and ``engine.batch.runner.run_batch``.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Mapping

from .errors import OutputError

#: File systems of these platforms ignore case by default (NTFS, APFS/HFS+).
CASE_INSENSITIVE = os.name == "nt" or sys.platform == "darwin"


def _key(path: str) -> str:
    """Resolved, normalised path of ``path`` (case folded where the platform ignores case)."""
    real = os.path.realpath(os.path.abspath(os.fspath(path)))
    return os.path.normcase(real).casefold() if CASE_INSENSITIVE else real


def same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same file (see the module docstring)."""
    if _key(a) == _key(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def raster_files(path: str) -> list[str]:
    """``path`` and the local files GDAL reads for it (a VRT's sources, sidecars); just
    ``[path]`` when it cannot be opened (the engine reports that later, naming it)."""
    files = [os.fspath(path)]
    if not os.path.isfile(path):
        return files
    try:
        import rasterio

        with rasterio.Env(), rasterio.open(path) as src:
            files += [f for f in (src.files or []) if not f.startswith("/vsi")]
    except Exception:  # noqa: BLE001 (not a raster, unreadable: not this check's business)
        pass
    return files


def _pairs(inputs) -> list[tuple[str, str]]:
    """Inputs as ``(label, path)`` pairs: from a mapping, pairs, or plain paths."""
    if isinstance(inputs, Mapping):
        return [(str(k), os.fspath(v)) for k, v in inputs.items() if v]
    out = []
    for item in inputs:
        label, path = item if isinstance(item, tuple) else ("input", item)
        if path:
            out.append((str(label), os.fspath(path)))
    return out


def check_outputs(outputs: Mapping[str, str | None], inputs=(), expand_rasters: bool = True) -> None:
    """Refuse outputs that would overwrite an input or each other.

    Args:
        outputs: label (as the user knows it, e.g. ``--output``, ``CONFIDENCE``) -> path;
            None or empty paths are skipped.
        inputs: label -> path, ``(label, path)`` pairs, or plain paths (labelled ``input``):
            rasters, the model file. Labels read as "the <label>": ``s2 input``, ``model file``.
        expand_rasters: also compare with the files GDAL reads for each input (a VRT's sources).

    Raises:
        OutputError: naming the output, and the input or other output it resolves to.
    """
    given = [(label, path, raster_files(path) if expand_rasters else [path])
             for label, path in _pairs(inputs)]
    outs = [(label, os.fspath(p)) for label, p in outputs.items() if p]
    for label, path in outs:
        for in_label, in_path, files in given:
            for f in files:
                if same_file(path, f):
                    via = "" if f == in_path else f" (a file it reads: '{f}')"
                    raise OutputError(
                        f"{label} '{path}' is the {in_label} '{in_path}'{via}: writing it "
                        "would destroy the input; choose another output file")
    for i, (label, path) in enumerate(outs):
        for other_label, other in outs[i + 1:]:
            if same_file(path, other):
                raise OutputError(f"{label} '{path}' and {other_label} '{other}' are the same "
                                  "file: one would replace the other; give each its own file")


def check_folder_output(folder: str, label: str, inputs=(),
                        names: Iterable[str] = (), subfolders: Iterable[str] = ()) -> None:
    """Refuse an output folder that is a file, or whose outputs would overwrite an input.

    Args:
        folder: the output folder (may not exist yet).
        label: its name for the user (``--output``, ``OUTPUT_FOLDER``).
        inputs: as for :func:`check_outputs`.
        names: files the job writes in the folder (``manifest.json``, ``mosaic.vrt``...).
        subfolders: folders inside it whose files the job writes or removes (``blocks``):
            an input inside them is refused.

    Raises:
        OutputError: naming the folder and the input concerned.
    """
    folder = os.fspath(folder)
    if not folder.strip():
        raise OutputError(f"{label}: no output folder given (empty path)")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"{label} '{folder}' is an existing file, not a folder: choose a "
                          "folder (it is created when missing)")
    items = _pairs(inputs)
    check_outputs({f"{label} file '{n}'": os.path.join(folder, n) for n in names}, items)
    for sub in subfolders:
        root = _key(os.path.join(folder, sub))
        for in_label, in_path in items:
            for f in raster_files(in_path):
                k = _key(f)
                if k == root or k.startswith(root.rstrip(os.sep) + os.sep):
                    raise OutputError(
                        f"the {in_label} '{in_path}' is inside the output folder's "
                        f"'{sub}' ('{os.path.join(folder, sub)}'), whose files this job "
                        "writes and removes; move it or choose another output folder")
