# `make demo` and `make test` each set everything up first (Debian packages, .venv, Python packages).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

# llama.cpp is compiled here. Its default (-march=native) emits AMX instructions on CPUs that report AMX,
# which traps ("Illegal instruction") where the kernel or hypervisor has not enabled AMX for the process, as
# on some cloud VMs. So on x86-64 it is built for AVX2 (any x86-64 server of the last decade), never
# natively, and never from pip's wheel cache, which may hold a native build from an earlier install.
LLAMA := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif

$(STAMP): pyproject.toml scripts/install-system.sh Makefile
	bash scripts/install-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "compiling $(LLAMA) for this CPU family (~10-20 min on 2 cores)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --progress-bar off --no-cache-dir --force-reinstall \
		--no-deps '$(LLAMA)'
	@echo "installing Python packages"
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
