#!/usr/bin/env bash
# Install llama-cpp-python ($2, e.g. llama-cpp-python==0.3.16) into the Python $1, compiled for this CPU
# with the flags of scripts/llama-cmake-args.sh (never AMX: see there).
#
# The compile takes 8-20 minutes on 2 cores, so the wheel it makes is kept in
# ~/.cache/babelfish/wheels/<key>/, where <key> is a hash of everything the binary depends on: the
# package version, the CMake flags (this CPU's features), the compiler and the Python version. A fresh
# clone on the same machine (`make clean`, CI) installs that wheel in seconds; a machine whose CPU, compiler
# or Python differs gets a key of its own and compiles. pip's own wheel cache is never used: it is keyed by
# the package alone and may hold a build with other flags. BABELFISH_LLAMA_REBUILD=1 compiles again.
set -euo pipefail
py=$1
spec=$2
here=$(cd "$(dirname "$0")" && pwd)
flags=$(bash "$here/llama-cmake-args.sh")
compiler=$( (cc --version 2>/dev/null || echo none) | head -1)
python=$("$py" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_platform())')
key=$(printf '%s\n%s\n%s\n%s\n' "$spec" "$flags" "$compiler" "$python" | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/babelfish/wheels/$key"
if [ "${BABELFISH_LLAMA_REBUILD:-0}" = 1 ] || ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "compiling $spec for this CPU (~10-20 min on 2 cores; kept in $cache for the next install)"
  rm -rf "$cache.partial"
  mkdir -p "$cache.partial"
  CMAKE_ARGS="$flags" "$py" -m pip wheel --progress-bar off --no-cache-dir --no-deps -w "$cache.partial" "$spec"
  rm -rf "$cache"
  mv "$cache.partial" "$cache"
else
  echo "$spec: the wheel compiled earlier for this CPU, compiler and Python ($cache)"
fi
"$py" -m pip install --progress-bar off --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
