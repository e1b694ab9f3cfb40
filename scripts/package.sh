#!/usr/bin/env bash
# `make package`: build dist/maestro-<version>.zip, the plugin ZIP for *Plugins > Install from
# ZIP* (what goes in: scripts/package.py). Extra arguments go to package.py (--output PATH).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec /usr/bin/python3 "$ROOT/scripts/package.py" "$@"
