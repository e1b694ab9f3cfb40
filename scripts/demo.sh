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
title=$($RUN "$ROOT/.venv/bin/python" - "$OUT/landcover.tif" <<'PY'
# The figures of the map shown (not the model's training-time metrics): held-out columns of
# the reference, scored as the model card scores them.
import sys

import numpy as np
import rasterio

from training.recipes.slovenia import HELDOUT_COLS, codes_to_target, confusion, scores

with rasterio.open(sys.argv[1]) as src:
    pred = src.read(1)
with rasterio.open("resources/sample/lulc_reference.tif") as src:
    target = codes_to_target(src.read(1))
cols = slice(*HELDOUT_COLS)
p, t = pred[:, cols], target[:, cols].copy()
t[p == 255] = -1                      # nodata in the map: not scored (none on the sample)
s = scores(confusion(np.where(p == 255, 0, p), t, 4))
print("maestro-tiny-slovenia-lulc, Slovenia sample (S2 x 5 dates 2015 + DEM): this map on "
      f"the held-out area: OA {100 * s['overall_accuracy']:.1f} %, mIoU {100 * s['miou']:.1f} %")
PY
)
$RUN "$ROOT/.venv/bin/python" "$ROOT/scripts/render_preview.py" \
  --s2 "$SAMPLE/S2_L1C_20150909.tif" --reference "$SAMPLE/lulc_reference.tif" \
  --prediction "$OUT/landcover.tif" --heldout "$heldout" --title "$title" \
  --save-style "$OUT/landcover.qml" --output "$OUT/landcover.png" 2>&1 \
  | grep -v -e '^proj_create' -e 'PNG driver does not support update' || true
test -s "$OUT/landcover.png"
echo "demo: wrote $OUT/landcover.tif and $OUT/landcover.png"
