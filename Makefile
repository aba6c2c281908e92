# `make demo` and `make test` each set everything up first (Debian packages, .venv, Python packages).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean voices-nonfree

# llama.cpp is compiled here, for this CPU's features named one by one and never AMX (which traps where
# the kernel has not enabled it: see scripts/llama-cmake-args.sh), once per machine: the wheel is kept under
# ~/.cache/babelfish/wheels, keyed by version, flags, compiler and Python (scripts/install-llama.sh).
LLAMA := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)

# The Python packages are installed by uv (from PyPI, as pip would: the same versions), in 15 s where pip took
# about 50; pip itself stays for the llama.cpp compile. mypy keeps its cache beside the llama.cpp wheel, so a
# fresh clone on the same machine checks in seconds (it re-checks whatever changed; cold: about 40 s).
UV_PIN := uv==0.13.8
UV := $(VENV)/bin/uv
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/babelfish
MYPY := $(VENV)/bin/mypy --cache-dir $(CACHE)/mypy

$(STAMP): pyproject.toml scripts/install-system.sh scripts/llama-cmake-args.sh scripts/install-llama.sh scripts/smart-turn-requirements.txt scripts/japanese-voice-requirements.txt Makefile
	bash scripts/install-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip $(UV_PIN)
	bash scripts/install-llama.sh $(PY) '$(LLAMA)'
	@echo "installing Python packages"
	$(UV) pip install --python $(PY) -e '.[dev]'
	$(UV) pip install --python $(PY) --no-deps --require-hashes -r scripts/smart-turn-requirements.txt
	$(UV) pip install --python $(PY) --no-deps --require-hashes -r scripts/japanese-voice-requirements.txt \
	  || echo "Japanese readings (pyopenjtalk-plus) not installed on this platform: Japanese is not offered"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m babelfish.devtools.demo

# Tests run in TEST_WORKERS processes, whole files each, the heaviest one after another (pytest-xdist;
# tests/conftest.py). Two workers on two cores: with three, real-time tests (a speakerphone's echo, a Ray
# replica's first translation) failed now and then for want of CPU. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -ra -n $(TEST_WORKERS) --dist loadgroup

test: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks
	$(MYPY) babelfish
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check babelfish tests benchmarks
	$(MYPY) babelfish

bench: setup
	$(VENV)/bin/babelfish bench latency
	$(VENV)/bin/babelfish bench quality
	$(VENV)/bin/babelfish bench load
	$(VENV)/bin/babelfish bench languages

# Opt-in: MBROLA German voices (Debian contrib + non-free; not for commercial use): see the script.
voices-nonfree:
	bash scripts/install-voices-nonfree.sh

clean:
	rm -rf $(VENV) demo-out .pytest_cache
