#!/usr/bin/env bash
# CMake flags for compiling llama.cpp (llama-cpp-python) for this machine's CPU.
#
# llama.cpp's default, -march=native, also emits AMX instructions wherever the CPU reports AMX; where the
# kernel or hypervisor has not enabled AMX for the process (seen on cloud VMs) they trap: "Illegal
# instruction" at the first translation. So the features are read from /proc/cpuinfo and named one by one,
# AMX never; the build is as specific to this machine as a native one (pip builds it where it runs).
set -euo pipefail
[ "$(uname -m)" = "x86_64" ] || exit 0  # elsewhere llama.cpp's defaults are fine
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { [[ "$flags" == *" $1 "* ]]; }
args=(-DGGML_NATIVE=OFF)
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI; do
  if has "${pair%%:*}"; then args+=("-DGGML_${pair##*:}=ON"); fi
done
# GGML_AVX512 compiles for F, CD, VL, DQ and BW together
if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
  args+=(-DGGML_AVX512=ON)
  for pair in avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if has "${pair%%:*}"; then args+=("-DGGML_${pair##*:}=ON"); fi
  done
fi
echo "${args[@]}"
