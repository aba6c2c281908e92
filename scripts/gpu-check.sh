#!/usr/bin/env bash
# Prove the GPU path on a machine with an NVIDIA GPU: each engine (faster-whisper, the llama.cpp translator,
# optionally an OPUS-MT model) is loaded on the CPU and on CUDA, given the same recorded telephone prompt or
# its text, and timed side by side; the speed-up over the CPU is printed as JSON and as a table
# (babelfish/devtools/gpu_check.py). Exit status 2, saying what is missing, where no GPU path is found.
#
# Before it, on the GPU machine:
#   1. make setup                      (the CPU install: .venv, models, the recorded prompts)
#   2. the NVIDIA driver (nvidia-smi works) and cuBLAS for CUDA 12, which CTranslate2's Linux wheels load at
#      run time (older CTranslate2 releases also want cuDNN 9), e.g. from pip:
#        .venv/bin/python -m pip install nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*
#      (this script puts their lib folders on LD_LIBRARY_PATH), or an nvidia/cuda:12-runtime image
#   3. llama-cpp-python compiled with CUDA (needs the CUDA toolkit, nvcc; the compile takes a while):
#        CMAKE_ARGS="$(bash scripts/llama-cmake-args.sh) -DGGML_CUDA=on" .venv/bin/python -m pip install \
#          --force-reinstall --no-deps --no-cache-dir "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
#      (`make setup` would put the CPU build back only when its inputs change; `make clean` does too)
#
# Usage: scripts/gpu-check.sh [--translator gemma-270m|qwen2.5-1.5b|none] [--recognizer small]
#                             [--opus-mt DIR] [--repeat 5] [--out gpu-check.json] [--cpu-only]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "nvidia-smi not found: no NVIDIA driver on this machine?" >&2
fi
# cuBLAS / cuDNN installed from pip live inside the nvidia-* packages: let CTranslate2 find them
libs=$("$py" - <<'PY'
import importlib, os
found = []
for name in ("nvidia.cublas.lib", "nvidia.cudnn.lib", "nvidia.cuda_runtime.lib"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    found += [p for p in getattr(module, "__path__", [])] or [os.path.dirname(module.__file__ or "")]
print(":".join(found))
PY
)
if [ -n "$libs" ]; then
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec "$py" -m babelfish.devtools.gpu_check "$@"
