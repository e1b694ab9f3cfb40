# MAESTRO for QGIS: the two newcomer commands are `make demo` and `make test`.
# Everything they need is installed by the project's own scripts, idempotently:
# a second run checks what is there and costs seconds.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export QT_QPA_PLATFORM ?= offscreen

.PHONY: all system venv plugin-profile lint test test-fast demo bench default-model package clean help
all: help

help:
	@echo "make demo    install what is missing, then segment the bundled sample through qgis_process"
	@echo "make test    install what is missing, then lint (ruff, mypy) and run the whole test suite"
	@echo "make lint    the static checks alone (ruff.toml, mypy.ini)"
	@echo "make bench   run the benchmarks (docs/performance.md)"
	@echo "make default-model   retrain the bundled default model (seeded recipe)"
	@echo "make package  build dist/maestro-<version>.zip (Plugins > Install from ZIP)"

system:
	@bash scripts/install-system.sh

# The venv sees Debian's qgis, gdal and rasterio (--system-site-packages) and adds
# what Debian does not have, pinned in requirements/.
$(STAMP): requirements/runtime.txt requirements/training.txt requirements/dev.txt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -r requirements/dev.txt
	@touch $(STAMP)

venv: system $(STAMP)

# A private QGIS profile with the plugin enabled, for qgis_process and the tests.
plugin-profile: venv
	@bash scripts/plugin-profile.sh

# Static checks first: a finding fails the build before the (long) test suite runs.
lint: venv
	@bash scripts/lint.sh

test: plugin-profile lint
	@bash scripts/run-tests.sh

demo: plugin-profile
	@bash scripts/demo.sh

bench: plugin-profile
	@bash scripts/with-env.sh $(PY) -m bench

default-model: venv
	@bash scripts/with-env.sh $(PY) -m training.recipes.default_model

# The plugin ZIP (scripts/package.py says what goes in); needs only the system python3.
package:
	@bash scripts/package.sh

clean:
	rm -rf .qgis out .pytest_cache dist
