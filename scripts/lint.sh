#!/usr/bin/env bash
# The static checks `make test` runs before the tests (config: ruff.toml, mypy.ini):
# ruff on the whole tree, mypy on engine/ (the engine and the contract layer). Fails on any finding.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
echo "ruff: $(.venv/bin/ruff --version)"
.venv/bin/ruff check .
echo "$(.venv/bin/mypy --version)"
MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-${TMPDIR:-/tmp}/maestro-mypy-cache}" .venv/bin/mypy
