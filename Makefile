# Set-up and the two quick-start jobs. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup reproduce test wheel-check docs

setup: $(VENV)/.installed

# The CPU wheel of torch 2.13.0 is installed first, so the package's own `torch>=2.3`
# is already satisfied and no multi-GB CUDA build is pulled.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $@

reproduce: setup
	$(VENV)/bin/stableresnet reproduce --scale quick

test: setup
	$(PY) -m pytest

# The package as users install it: wheel built, installed without -e in a fresh venv, every subcommand run once.
wheel-check:
	bash .ci/wheel-smoke

# The documentation site: API reference, user guide, the gallery (its scripts run during the build),
# and the results and benchmark pages generated from kept files. Warnings are errors.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,ray,docs]'
	touch $@

docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
