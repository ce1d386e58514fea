#!/usr/bin/env bash
# Fuzzes every reader of outside data with libFuzzer (ASan + UBSan, no recovery):
#   scripts/fuzz.sh [SECONDS per harness, default 300] [HARNESS ...]
# Builds into build-fuzz/ with clang (Debian's clang and libclang-rt-*-dev, which
# scripts/install-deps.sh does not install: the default build and tests do not need them), writes
# the seed corpora with sparq's own writers, and runs each harness (fuzz_safetensors,
# fuzz_safetensors_index, fuzz_gguf, fuzz_config, fuzz_tokenizers, fuzz_model_folder) over its
# growing corpus (build-fuzz/tests/fuzz/corpus/KIND) with its dictionary. Prints, per harness,
# the executions, the coverage (edges) and the features, and exits non-zero on the first crash,
# leak, timeout or sanitizer report (libFuzzer leaves the input as crash-*/leak-*/timeout-* in
# build-fuzz/tests/fuzz/artifacts/; add it to tests as a regression).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] ||
  harnesses=(fuzz_safetensors fuzz_safetensors_index fuzz_gguf fuzz_config fuzz_tokenizers
             fuzz_model_folder)
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARQ_FUZZ=ON \
  -DSPARQ_WITH_CUDA=OFF -DSPARQ_BUILD_TESTS=OFF -DSPARQ_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers
dir=build-fuzz/tests/fuzz
status=0
for h in "${harnesses[@]}"; do
  kind="${h#fuzz_}"
  mkdir -p "$dir/corpus/$kind" "$dir/artifacts"
  log="$dir/$h.log"
  set +e
  "$dir/$h" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$h-" -dict="tests/fuzz/$kind.dict" \
    "$dir/corpus/$kind" "$dir/seeds/$kind" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  corpus=$(find "$dir/corpus/$kind" -type f | wc -l)
  printf '%-18s rc %d  executions %s  edges %s  features %s  corpus %s  (%s s)\n' \
    "$h" "$rc" "$runs" "$cov" "$ft" "$corpus" "$seconds"
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "fuzz: $h failed; its log: $log; the input: $(ls "$dir/artifacts/$h-"* 2>/dev/null | head -1)" >&2
    tail -30 "$log" >&2
  fi
done
exit "$status"
