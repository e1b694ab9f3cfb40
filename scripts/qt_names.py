"""Check that every Qt (and QGIS enum) name a set of Python files uses exists under a Qt
binding: PyQt6 (QGIS 4 is Qt6 only) or the installed QGIS's ``qgis.PyQt`` (PyQt5 on 3.40).

Used by tests/plugin/test_qt6_names.py, which runs this file twice as a subprocess: with the
PyQt6 side venv's python (scripts/pyqt6-venv.sh; PyQt6 must never be imported into a
QGIS 3 process) and with the project's venv python (QGIS 3.40, PyQt5).

    python scripts/qt_names.py --binding PyQt6 FILE...      # prints JSON: the failures
    python scripts/qt_names.py --binding qgis FILE...

What is collected (stdlib ``ast`` only, so it runs in the bare PyQt6 venv):
- every name imported from ``qgis.PyQt.<Module>`` (must exist in ``PyQt6.<Module>``, resp.
  ``qgis.PyQt.<Module>``), and every ``from PyQt5/PyQt6 ...`` import (must go through
  ``qgis.PyQt``);
- every attribute chain rooted at such a name (``Qt.AlignmentFlag.AlignLeft``,
  ``QDialogButtonBox.StandardButton.Ok``, ``QSizePolicy.Policy.Expanding``): it must resolve
  by ``getattr``; an unscoped enum (``Qt.AlignLeft``) does not exist in PyQt6;
- with ``--binding qgis`` also the chains rooted at names imported from ``qgis.core`` /
  ``qgis.gui``: when a chain ends on an enum member, the name before the member must be the
  enum's own class (``Qgis.MessageLevel.Critical``, not ``Qgis.Critical``;
  ``Qgis.ProcessingSourceType.Raster``, not ``QgsProcessing.TypeRaster``): QGIS 4 removed the
  unscoped aliases (the same rule is applied to Qt names there);
- every call of ``exec_`` (PyQt6 has only ``exec``) and every use of ``QRegExp`` /
  ``QDesktopWidget`` (removed in Qt6).

Sources: PyQt6 differences from PyQt5, https://www.riverbankcomputing.com/static/Docs/PyQt6/
pyqt5_differences.html (scoped enums only, exec_ removed); QGIS 4 plugin migration notes,
https://github.com/qgis/QGIS/wiki/Plugin-migration-to-be-compatible-with-Qt5-and-Qt6.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
from dataclasses import asdict, dataclass

REMOVED_IN_QT6 = {"QRegExp", "QRegExpValidator", "QDesktopWidget"}


@dataclass(frozen=True)
class Use:
    """One name use: ``file:line``, the kind (``qt`` / ``qgis`` / ``bad``), the module
    (``QtCore`` for Qt, ``qgis.core`` for QGIS) and the attribute chain from it."""

    file: str
    line: int
    kind: str
    module: str
    chain: tuple[str, ...]
    problem: str = ""

    def text(self) -> str:
        where = f"{self.file}:{self.line}"
        name = ".".join(self.chain)
        return f"{where}: {name} ({self.problem})" if self.problem else f"{where}: {name}"


def _imports(tree: ast.AST, path: str, uses: list[Use]) -> dict[str, tuple[str, str, tuple]]:
    """Local name -> (kind, module, chain) for the Qt / QGIS imports of a module."""
    names: dict[str, tuple[str, str, tuple]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            for alias in node.names:
                local = alias.asname or alias.name
                if mod.split(".")[0] in ("PyQt5", "PyQt6"):
                    uses.append(Use(path, node.lineno, "bad", mod, (alias.name,),
                                    f"imports {mod} directly; use qgis.PyQt"))
                elif mod == "qgis.PyQt":
                    names[local] = ("qt", alias.name, ())
                elif mod.startswith("qgis.PyQt."):
                    qt_module = mod.split(".", 2)[2]
                    names[local] = ("qt", qt_module, (alias.name,))
                    uses.append(Use(path, node.lineno, "qt", qt_module, (alias.name,)))
                    if alias.name in REMOVED_IN_QT6:
                        uses.append(Use(path, node.lineno, "bad", qt_module, (alias.name,),
                                        "removed in Qt6"))
                elif mod in ("qgis.core", "qgis.gui"):
                    names[local] = ("qgis", mod, (alias.name,))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("PyQt5", "PyQt6"):
                    uses.append(Use(path, node.lineno, "bad", alias.name, (),
                                    f"imports {alias.name} directly; use qgis.PyQt"))
                elif alias.name.startswith("qgis.PyQt.") and alias.asname:
                    names[alias.asname] = ("qt", alias.name.split(".", 2)[2], ())
    return names


def _chain(node: ast.Attribute) -> tuple[str | None, tuple[str, ...]]:
    """(root name, attributes) of ``a.b.c``; root None when it does not start at a name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), tuple(reversed(attrs))


def collect(path: str, source: str | None = None) -> list[Use]:
    """Every Qt / QGIS name use of one Python file (see the module docstring)."""
    if source is None:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    tree = ast.parse(source, filename=path)
    uses: list[Use] = []
    names = _imports(tree, path, uses)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == "exec_":
                uses.append(Use(path, node.lineno, "bad", "", ("exec_",),
                                "PyQt6 has no exec_(); call exec()"))
            if id(node) in inner:
                continue  # part of a longer chain, checked there
            root, attrs = _chain(node)
            if root in names:
                kind, module, base = names[root]
                uses.append(Use(path, node.lineno, kind, module, base + attrs))
        elif isinstance(node, ast.Name) and node.id in REMOVED_IN_QT6:
            uses.append(Use(path, node.lineno, "bad", "", (node.id,), "removed in Qt6"))
    return uses


def _is_enum_member(value) -> bool:
    import enum

    if isinstance(value, enum.Enum):
        return True
    meta = type(type(value))  # sip's enum type (PyQt5 / QGIS 3 sip enums)
    return meta.__name__ == "enumtype"


def resolve(uses: list[Use], binding: str) -> list[Use]:
    """The uses that do not resolve under ``binding`` (``PyQt6`` or ``qgis``)."""
    failures = []
    for use in uses:
        if use.kind == "bad":
            failures.append(use)
            continue
        if use.kind == "qgis" and binding != "qgis":
            continue  # QGIS names are checked in the QGIS process only
        if use.kind == "qt":
            prefix = "PyQt6" if binding == "PyQt6" else "qgis.PyQt"
            module_name = f"{prefix}.{use.module}"
        else:
            module_name = use.module
        try:
            value = importlib.import_module(module_name)
        except ImportError as exc:
            failures.append(Use(use.file, use.line, use.kind, use.module, use.chain,
                                f"no module {module_name}: {exc}"))
            continue
        problem = ""
        for i, attr in enumerate(use.chain):
            if not hasattr(value, attr):
                where = ".".join((module_name,) + use.chain[:i]) if i else module_name
                problem = f"{where} has no {attr} under {binding}"
                break
            value = getattr(value, attr)
        if not problem and len(use.chain) >= 2 and _is_enum_member(value) \
                and use.chain[-2] != type(value).__name__:
            member = getattr(value, "name", None) or use.chain[-1]
            problem = (f"unscoped enum: write {type(value).__qualname__}.{member} "
                       "(QGIS 4 / PyQt6 know only the scoped name)")
        if problem:
            failures.append(Use(use.file, use.line, use.kind, use.module, use.chain, problem))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binding", choices=("PyQt6", "qgis"), required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    uses = [u for path in args.files for u in collect(path)]
    failures = resolve(uses, args.binding)
    json.dump({"checked": len(uses), "failures": [asdict(f) | {"text": f.text()}
                                                  for f in failures]}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
