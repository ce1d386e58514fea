#!/usr/bin/env bash
# Builds the whole test suite with AddressSanitizer + UndefinedBehaviorSanitizer (no recovery:
# the first report fails the test) into build-asan/ and runs it with CTest; with --thread, builds
# the concurrency tests (tests/test_concurrency.cpp, CTest label `concurrency`) with
# ThreadSanitizer into build-tsan/ and runs them.
#
#   scripts/sanitize.sh [CTEST ARGS...]     e.g. scripts/sanitize.sh -R test_int8_kernel
#   scripts/sanitize.sh --thread [CTEST ARGS...]
#
# ThreadSanitizer sees the synchronization of instrumented code only. Debian's oneTBB and oneDNN
# (OpenMP) are not instrumented, so a hand-off inside their thread pools would look like a race:
# the concurrency tests therefore run single-threaded objects from several std::threads (the
# callers' own threads, whose start and join TSan sees), with OMP_NUM_THREADS=1 so oneDNN's dense
# layers stay on the calling thread. scripts/tsan.supp names what is suppressed and why.
# The JIT kernels run under the sanitizers too: generated code is not instrumented, so its own
# loads and stores are not checked, but every buffer it is handed comes from instrumented code.
# oneDNN and oneTBB are Debian's uninstrumented builds. The CUDA backend is left out (its
# libraries are not built for ASan). Needs what ./sparq.sh test installs (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--thread" ]; then
  shift
  tflags="-fsanitize=thread -fno-omit-frame-pointer -g -O1"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARQ_WITH_CUDA=OFF \
    -DSPARQ_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$tflags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
  cmake --build build-tsan -j"$(nproc)" --target test_concurrency
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp}"
  export OMP_NUM_THREADS=1
  cd build-tsan
  exec ctest --output-on-failure -L concurrency "$@"
fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARQ_WITH_CUDA=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build build-asan -j"$(nproc)"
# detect_leaks: every leak fails its test, except the few scripts/sanitize.supp names and explains.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/sanitize.supp:print_suppressions=0}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd build-asan
# install_and_build_consumer builds examples/consumer uninstrumented against the instrumented
# library, which the ASan runtime refuses to start (it must be the first library loaded); the
# install itself is checked by the normal suite.
exec ctest --output-on-failure -j"$(nproc)" -E '^install_and_build_consumer$' "$@"
