#!/usr/bin/env bash
# Make the repository loadable as the QGIS plugin "maestro" in a private profile:
# .qgis/plugins/maestro -> repository root, and the plugin enabled in .qgis/profile.
# Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$ROOT/.qgis/plugins" "$ROOT/.qgis/profile/profiles/default/QGIS"
link="$ROOT/.qgis/plugins/maestro"
if [ "$(readlink "$link" 2>/dev/null)" != "$ROOT" ]; then
  rm -f "$link"
  ln -s "$ROOT" "$link"
fi
ini="$ROOT/.qgis/profile/profiles/default/QGIS/QGIS3.ini"
if ! grep -q '^maestro=true' "$ini" 2>/dev/null; then
  # Same effect as `qgis_process plugins enable maestro`, without starting QGIS.
  python3 - "$ini" <<'PY'
import configparser, sys
path = sys.argv[1]
cfg = configparser.RawConfigParser()
cfg.optionxform = str
cfg.read(path)
if not cfg.has_section("PythonPlugins"):
    cfg.add_section("PythonPlugins")
cfg.set("PythonPlugins", "maestro", "true")
with open(path, "w") as fh:
    cfg.write(fh, space_around_delimiters=False)
PY
fi

# Debian's /usr/bin/qgis_process wrapper passes --noversioncheck from /etc/default/qgis,
# which qgis_process 3.22 refuses ("Command --noversioncheck not known!"). A shim on the
# project's PATH calls the real binary.
mkdir -p "$ROOT/.qgis/bin"
shim="$ROOT/.qgis/bin/qgis_process"
if [ ! -x "$shim" ]; then
  printf '#!/bin/sh\nexec /usr/bin/qgis_process.bin "$@"\n' > "$shim"
  chmod +x "$shim"
fi
