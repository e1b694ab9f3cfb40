#!/usr/bin/env bash
# Screenshots of the plugin in the real QGIS desktop (3.40) under Xvfb, in a throw-away
# profile: the Toolbox, the segment dialog, the dock at first start (no onnxruntime yet),
# before and after a run, the Train part and a similarity map, the installer, Diagnostics and
# the graphical model.
# -> docs/img/*.png (or the folder given). A docs artefact, not a test. Needs xvfb.
# Usage: bash scripts/screenshots.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/docs/img}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bash "$ROOT/scripts/plugin-profile.sh" >/dev/null
INPUTS=$(bash "$ROOT/scripts/with-env.sh" "$ROOT/.venv/bin/python" "$ROOT/scripts/screenshot_data.py" "$WORK/data" | tail -n1)
# A fresh profile with only the plugin enabled (the tests' profile stays untouched).
mkdir -p "$WORK/profile/profiles/default/QGIS"
printf '[PythonPlugins]\nmaestro=true\n\n[qgis]\nshowTips=false\ncheckVersion=false\n' \
  > "$WORK/profile/profiles/default/QGIS/QGIS3.ini"
SITE=$("$ROOT/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export QGIS_PLUGINPATH="$ROOT/.qgis/plugins" QGIS_CUSTOM_CONFIG_PATH="$WORK/profile"
export PYTHONPATH="$ROOT:$SITE" MAESTRO_SHOT_INPUTS="$INPUTS" MAESTRO_SHOT_OUT="$OUT"
export MAESTRO_DEPS_DIR="$WORK/deps" MAESTRO_SHOT_ROOT="$ROOT" MAESTRO_SHOT_LIST="$WORK/saved.txt"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" "$OUT"
unset QT_QPA_PLATFORM
rm -f "$WORK/done"
timeout 600 xvfb-run -a -s "-screen 0 1600x1000x24" \
  qgis --nologo --noversioncheck --code "$ROOT/scripts/screenshot_in_qgis.py" || true
cat "$WORK/saved.txt"
