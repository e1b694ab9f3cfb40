"""Build the plugin ZIP a user installs with *Plugins > Install from ZIP* (``make package``).

    python3 scripts/package.py [--output dist/maestro-<version>.zip]

The ZIP holds one top-level folder ``maestro`` (the module name QGIS imports, a Python
identifier) with only what the plugin needs at run time: the entry point and metadata, the
licence, ``maestro_plugin/`` and ``engine/`` (Python only), the icons, styles and the bundled
default model with its card (the plugin's default when MODEL is empty). Left out: ``training/``
(never imported by the plugin or the engine), tests, benches, scripts, docs, the sample data,
caches and build outputs. Rules of the official plugin repository (a folder named as a Python
identifier, metadata.txt, a licence, at most 25 MB, no ``__pycache__``/``.pyc``/``.git``):
https://plugins.qgis.org/publish/ and docs.qgis.org's "Releasing your plugin".

Stdlib only; the archive is reproducible (sorted entries, fixed timestamps). Prints the path
and size of the ZIP.
"""
from __future__ import annotations

import argparse
import configparser
import fnmatch
import os
import sys
import zipfile

#: The folder the ZIP unpacks to = the Python module QGIS imports the plugin as.
PLUGIN_FOLDER = "maestro"
#: The official repository refuses larger plugins.
MAX_BYTES = 25 * 1024 * 1024

#: Files at the plugin root.
ROOT_FILES = ("__init__.py", "metadata.txt", "LICENSE", "README.md")
#: (folder, patterns) of what the plugin reads at run time.
TREES = (
    ("maestro_plugin", ("*.py",)),
    ("engine", ("*.py",)),
    ("resources/icons", ("*.svg", "*.png")),
    ("resources/styles", ("*.qml",)),
    ("resources/models", ("*.onnx", "*.onnx.data", "*.md", "*.json", "*.model3")),
)
#: Never packaged, wherever they are.
EXCLUDED_PARTS = ("__pycache__", ".git", ".pytest_cache")
EXCLUDED_NAMES = ("*.pyc", "*.pyo", "*.aux.xml", "*.part", ".*")

_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def plugin_files(root: str) -> list[str]:
    """Relative paths (``/``-separated, sorted) of the files the ZIP holds.

    Raises:
        FileNotFoundError: a root file the plugin needs (metadata.txt, LICENSE, ...) is missing.
    """
    files = []
    for name in ROOT_FILES:
        if not os.path.isfile(os.path.join(root, name)):
            raise FileNotFoundError(f"{name} is missing in {root}: the plugin ZIP needs it")
        files.append(name)
    for folder, patterns in TREES:
        base = os.path.join(root, folder)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in EXCLUDED_PARTS and not d.startswith("."))
            for name in filenames:
                if any(fnmatch.fnmatch(name, p) for p in EXCLUDED_NAMES):
                    continue
                if any(fnmatch.fnmatch(name, p) for p in patterns):
                    files.append(os.path.relpath(os.path.join(dirpath, name), root)
                                 .replace(os.sep, "/"))
    return sorted(files)


def version(root: str) -> str:
    """The ``version`` of metadata.txt."""
    cfg = configparser.RawConfigParser()
    cfg.read(os.path.join(root, "metadata.txt"), encoding="utf-8")
    return cfg.get("general", "version")


def build(root: str, output: str) -> str:
    """Write the ZIP to ``output`` (through a temporary name) and return its path.

    Raises:
        ValueError: the ZIP would exceed the repository's 25 MB.
    """
    files = plugin_files(root)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            info = zipfile.ZipInfo(f"{PLUGIN_FOLDER}/{rel}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(os.path.join(root, rel), "rb") as fh:
                zf.writestr(info, fh.read())
    size = os.path.getsize(tmp)
    if size > MAX_BYTES:
        os.remove(tmp)
        raise ValueError(f"the plugin ZIP would be {size / 2**20:.1f} MiB; the QGIS plugin "
                         f"repository accepts at most {MAX_BYTES / 2**20:.0f} MiB")
    os.replace(tmp, output)
    return output


def main(argv: list[str] | None = None) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="ZIP path (default dist/maestro-<version>.zip)")
    args = parser.parse_args(argv)
    output = args.output or os.path.join(root, "dist", f"{PLUGIN_FOLDER}-{version(root)}.zip")
    path = build(root, output)
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"{path}: {count} files, {os.path.getsize(path) / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
