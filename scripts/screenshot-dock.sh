#!/usr/bin/env bash
# Screenshot of the MAESTRO dock in a real QGIS window under Xvfb -> docs/img/dock-panel.png.
# A docs artefact, not a test. Needs xvfb and imagemagick (`import`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/docs/img/dock-panel.png}
command -v import >/dev/null || { echo "imagemagick's import is missing: apt-get install imagemagick"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bash "$ROOT/scripts/plugin-profile.sh"
INPUTS=$(bash "$ROOT/scripts/with-env.sh" "$ROOT/.venv/bin/python" "$ROOT/scripts/screenshot_data.py" "$WORK/data" | tail -n1)
# A throw-away profile with the plugin enabled (the tests' profile stays untouched).
mkdir -p "$WORK/profile/profiles/default/QGIS"
printf '[PythonPlugins]\nmaestro=true\n\n[qgis]\nshowTips=false\ncheckVersion=false\n' \
  > "$WORK/profile/profiles/default/QGIS/QGIS3.ini"
SITE=$("$ROOT/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export QGIS_PLUGINPATH="$ROOT/.qgis/plugins" QGIS_CUSTOM_CONFIG_PATH="$WORK/profile"
export PYTHONPATH="$ROOT:$SITE" MAESTRO_SHOT_INPUTS="$INPUTS" MAESTRO_SHOT_OUT="$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" "$(dirname "$OUT")"
unset QT_QPA_PLATFORM
timeout 240 xvfb-run -a -s "-screen 0 1600x1000x24" \
  qgis --nologo --noversioncheck --code "$ROOT/scripts/screenshot_in_qgis.py" || true
test -s "$OUT" && echo "$OUT"
