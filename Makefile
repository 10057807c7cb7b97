# Two commands set everything up on a fresh machine (Python 3.11 + pip):
#   make demo   - install, generate synthetic data, materialize every asset, print a summary
#   make test   - install (and Debian's chromium if missing), run the whole test suite
#                 (needs PostgreSQL on 127.0.0.1:5432)
# and `make ui` opens the Dagster UI on what the demo produced.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SEEDTEST_HOME ?= $(CURDIR)/.seedtest
export SEEDTEST_HOME

.PHONY: install demo test ui bench lint clean chromium

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/seedtest demo

# The UI end-to-end test drives Debian's headless chromium (Playwright launches it; nothing is
# downloaded by Playwright). A fresh machine lacks it: install it from the Debian mirror.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo "installing chromium (apt-get)..."; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi
	@test -x /usr/bin/chromium || { echo "chromium install failed" >&2; exit 1; }

LINTED := seedtest_assets seedtest_assets_tests benchmarks deploy

test: install chromium
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	# The layering (docs/architecture.md): the core imports no Dagster, no floor imports a higher one.
	$(BIN)/lint-imports
	$(BIN)/mypy seedtest_assets/core
	# Dagster's own validation of the code location (asset graph, partition mappings).
	$(BIN)/dg check defs
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/python -m pytest -q

ui: install
	DAGSTER_HOME=$(SEEDTEST_HOME)/dagster $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/irt.py
	$(BIN)/python benchmarks/kpi.py

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports
	$(BIN)/mypy seedtest_assets/core

clean:
	rm -rf $(SEEDTEST_HOME)
