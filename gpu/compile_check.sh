#!/usr/bin/env bash
# Compile-only check of every GPU source, for machines without a GPU: each .cu with nvcc for sm_80
# and sm_90, each host .cpp of gpu/ with and without cuSPARSELt (the 2:4 path compiled in and out),
# warnings as errors. Usage: gpu/compile_check.sh [cuSPARSELt include dir]. Exit 77: no nvcc.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
if [ ! -x "$nvcc" ]; then
  echo "compile_check: no nvcc: skipped"
  exit 77
fi
cuda_include="$(dirname "$(dirname "$nvcc")")/include"
lt_include="${1:-}"
cxx="${CXX:-g++}"
flags=(-std=c++20 -I"$root" -I"$root/include" -I"$cuda_include")
warnings=(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror)
failed=0
for cu in "$root"/gpu/*.cu; do
  for arch in 80 90; do
    if "$nvcc" "${flags[@]}" -arch=sm_$arch -Werror all-warnings -Xcompiler -Wall,-Wextra \
        -c "$cu" -o /dev/null; then
      echo "ok  nvcc sm_$arch $(basename "$cu")"
    else
      echo "FAIL nvcc sm_$arch $(basename "$cu")"
      failed=1
    fi
  done
done
variants=("-DSPARQ_HAVE_CUSPARSELT=0")
if [ -n "$lt_include" ] && [ -f "$lt_include/cusparseLt.h" ]; then
  variants+=("-DSPARQ_HAVE_CUSPARSELT=1 -I$lt_include")
else
  echo "note: no cuSPARSELt header given: the 2:4 path is checked compiled out only"
fi
for cpp in "$root"/gpu/*.cpp; do
  for variant in "${variants[@]}"; do
    # shellcheck disable=SC2086
    if "$cxx" "${flags[@]}" "${warnings[@]}" $variant -fsyntax-only "$cpp"; then
      echo "ok  $cxx ${variant%% *} $(basename "$cpp")"
    else
      echo "FAIL $cxx ${variant%% *} $(basename "$cpp")"
      failed=1
    fi
  done
done
exit $failed
