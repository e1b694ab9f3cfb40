#!/usr/bin/env bash
# `make demo`: segment the bundled Slovenia sample with the bundled default model through
# qgis_process (maestro:segment, MODEL left empty = the default model), then render a preview
# with QGIS's own map renderer: true colour, reference and prediction side by side with a
# legend. Writes $OUT/landcover.tif (+ .qml style) and $OUT/landcover.png (OUT defaults to out/).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/out}
SAMPLE="$ROOT/resources/sample"
RUN="bash $ROOT/scripts/with-env.sh"
mkdir -p "$OUT"
# No stale result may pass for a new one.
rm -f "$OUT/landcover.tif" "$OUT/landcover.qml" "$OUT/landcover.png"

s2=()
for f in "$SAMPLE"/S2_L1C_*.tif; do s2+=("S2=$f"); done
$RUN qgis_process run maestro:segment -- "${s2[@]}" DEM="$SAMPLE/dem.tif" \
  OUTPUT="$OUT/landcover.tif"

heldout=$($RUN "$ROOT/.venv/bin/python" -m training.recipes.slovenia heldout-bounds)
title=$($RUN "$ROOT/.venv/bin/python" - <<'PY'
from engine.contract import read_model_metadata
import os
meta = read_model_metadata(os.path.join("resources", "models", "maestro-tiny-slovenia-lulc.onnx"))
m = meta.provenance.get("metrics", {})
print(f"{meta.name} on the bundled Slovenia sample (Sentinel-2, 5 dates, 2015 + DEM); "
      f"held-out area: OA {100 * m['heldout_overall_accuracy']:.1f} %, "
      f"mIoU {100 * m['heldout_miou']:.1f} %")
PY
)
$RUN "$ROOT/.venv/bin/python" "$ROOT/scripts/render_preview.py" \
  --s2 "$SAMPLE/S2_L1C_20150909.tif" --reference "$SAMPLE/lulc_reference.tif" \
  --prediction "$OUT/landcover.tif" --heldout "$heldout" --title "$title" \
  --save-style "$OUT/landcover.qml" --output "$OUT/landcover.png" 2>&1 \
  | grep -v -e '^proj_create' -e 'PNG driver does not support update' || true
test -s "$OUT/landcover.png"
echo "demo: wrote $OUT/landcover.tif and $OUT/landcover.png"
