# `make demo` and `make test` each set everything up first (Debian packages, .venv, Python packages).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean voices-nonfree

# llama.cpp is compiled here, for this CPU's features named one by one and never AMX (which traps where
# the kernel has not enabled it: see scripts/llama-cmake-args.sh), and never from pip's wheel cache, which
# may hold a build from an earlier install with other flags.
LLAMA := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)

$(STAMP): pyproject.toml scripts/install-system.sh scripts/llama-cmake-args.sh scripts/smart-turn-requirements.txt Makefile
	bash scripts/install-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "compiling $(LLAMA) for this CPU (~10-20 min on 2 cores)"
	CMAKE_ARGS="$$(bash scripts/llama-cmake-args.sh)" $(PY) -m pip install --progress-bar off --no-cache-dir --force-reinstall \
		--no-deps '$(LLAMA)'
	@echo "installing Python packages"
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	$(PY) -m pip install --progress-bar off --no-deps --require-hashes -r scripts/smart-turn-requirements.txt
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m babelfish.devtools.demo

test: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks
	$(VENV)/bin/mypy babelfish
	$(PY) -m pytest -ra

test-fast: setup
	$(PY) -m pytest -ra -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks
	$(VENV)/bin/mypy babelfish

bench: setup
	$(VENV)/bin/babelfish bench latency
	$(VENV)/bin/babelfish bench quality
	$(VENV)/bin/babelfish bench load

# Opt-in: MBROLA German voices (Debian contrib + non-free; not for commercial use): see the script.
voices-nonfree:
	bash scripts/install-voices-nonfree.sh

clean:
	rm -rf $(VENV) demo-out .pytest_cache
