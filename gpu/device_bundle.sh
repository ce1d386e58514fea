#!/usr/bin/env bash
# Packs what gpu/check.sh needs to run on a GPU machine that can build nothing and fetch nothing
# (such as the offline GPU machines sessions are lent, whose image has CUDA, PyTorch and the
# cuSPARSELt wheel but not sparq's Debian libraries): builds here with -DSPARQ_WITH_CUDA=ON into
# build-cuda/, then writes .device/bundle.tar.xz with the CUDA test suites, sparq-bench,
# sparq-eval, libsparq, the backend and the non-CUDA libraries they load (oneDNN, oneTBB, ICU,
# PCRE2). On the GPU machine, from the repository root:
#   mkdir -p /tmp/sparq && tar -xJf .device/bundle.tar.xz -C /tmp/sparq &&
#     gpu/check.sh --prebuilt /tmp/sparq
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-cuda
scripts/cuda-deps.sh
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DSPARQ_WITH_CUDA=ON >/dev/null
cmake --build $build -j"$(nproc)" --target sparq_cuda sparq-bench sparq-eval test_cuda_api \
  test_cuda_kernels test_cuda_encoder
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bench" "$stage/tests" "$stage/lib"
cp -L $build/libsparq.so.0 $build/libsparq_cuda.so "$stage/"
cp $build/bench/sparq-bench $build/bench/sparq-eval "$stage/bench/"
cp $build/tests/test_cuda_api $build/tests/test_cuda_kernels $build/tests/test_cuda_encoder \
  "$stage/tests/"
# Every library the binaries load except glibc, the GCC runtime and CUDA's own (the GPU machine
# has those, and its driver must match its CUDA libraries).
for f in "$stage"/libsparq*.so* "$stage"/bench/* "$stage"/tests/*; do
  ldd "$f" | awk '/=> \//{print $3}'
done | sort -u | grep -Ev '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libgomp)\.so' |
  grep -Ev '/(libcu|libnv|libcusparseLt|libsparq)' | while read -r lib; do
  cp -L "$lib" "$stage/lib/"
done
echo "sparq $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'), packed \
$(date -u +%Y-%m-%dT%H:%MZ)" >"$stage/VERSION"
mkdir -p .device
tar -cJf .device/bundle.tar.xz -C "$stage" .
ls -la .device/bundle.tar.xz
echo "lib/: $(ls "$stage/lib" | tr '\n' ' ')"
