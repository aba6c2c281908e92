# `make demo` and `make test` each set everything up first (Debian packages, .venv, Python packages).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): pyproject.toml scripts/install-system.sh
	bash scripts/install-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "installing Python packages (llama-cpp-python compiles on first install: ~10-20 min on 2 cores)"
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m babelfish.demo

test: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks
	$(PY) -m pytest -ra

test-fast: setup
	$(PY) -m pytest -ra -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks

bench: setup
	$(VENV)/bin/babelfish bench latency
	$(VENV)/bin/babelfish bench quality
	$(VENV)/bin/babelfish bench load

clean:
	rm -rf $(VENV) demo-out .pytest_cache
