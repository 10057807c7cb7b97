# Two commands set everything up on a fresh machine (Python 3.11 + pip):
#   make demo   - install, generate synthetic data, materialize every asset, print a summary
#   make test   - install, run the whole test suite (needs PostgreSQL on 127.0.0.1:5432)
# and `make ui` opens the Dagster UI on what the demo produced.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SEEDTEST_HOME ?= $(CURDIR)/.seedtest
export SEEDTEST_HOME

.PHONY: install demo test ui bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/seedtest demo

test: install
	$(BIN)/ruff check seedtest_assets seedtest_assets_tests benchmarks
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
	$(BIN)/ruff check seedtest_assets seedtest_assets_tests benchmarks
	$(BIN)/ruff format --check seedtest_assets seedtest_assets_tests benchmarks

clean:
	rm -rf $(SEEDTEST_HOME)
