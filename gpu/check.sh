#!/usr/bin/env bash
# The GPU check of sparq's CUDA backend, for a machine with an NVIDIA GPU of sm_80 or newer:
# builds with -DSPARQ_WITH_CUDA=ON into build-cuda/, runs the GPU tests, then a short benchmark
# (2:4 fp16 and int8 against cuBLASLt dense on 4096 x 4096 x 4096 and on BERT-base's four linear
# shapes at 128 and 4096 tokens; block-sparse 16x16 / 32x32 fp16 and 32x32 int8 at 90 %; BERT-base
# end to end, batch 32 x seq 128, fp16 dense against 2:4) and prints a summary with the time each
# part took (the target: under 8 minutes on an H100, build excluded).
#   gpu/check.sh                   build here (needs sparq's Debian packages and the CUDA toolkit)
#   gpu/check.sh --skip-build      reuse build-cuda/
#   gpu/check.sh --prebuilt DIR    run what gpu/device_bundle.sh packed, unpacked into DIR (for
#                                  GPU machines that cannot build sparq or fetch packages)
#   SPARQ_CHECK_BUDGET=SECONDS     the most the tests and benchmark may take together (500)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-cuda
mode="${1:-}"
if [ "$mode" = "--prebuilt" ]; then
  build="${2:?--prebuilt needs the folder the bundle was unpacked into}"
  # The bundle's libraries, then CUDA's (the toolkit's first, then the pip wheels of the python3
  # on PATH, where GPU images with PyTorch keep cuSPARSELt).
  wheels=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({p for d in dirs for p in glob.glob(d + "/nvidia/*/lib")})))
PY
)
  export LD_LIBRARY_PATH="$build:$build/lib:/usr/local/cuda/lib64:${wheels}:${LD_LIBRARY_PATH:-}"
fi
log=$build/check.log
if [ "$mode" != "--skip-build" ] && [ "$mode" != "--prebuilt" ]; then
  scripts/cuda-deps.sh
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DSPARQ_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${arch:-80;90}" >/dev/null
  cmake --build $build -j"$(nproc)" --target sparq_cuda sparq-bench sparq-eval test_cuda_api \
    test_cuda_kernels test_cuda_encoder
fi
mkdir -p $build
: >"$log"
say() { echo "$@" | tee -a "$log"; }

SECONDS=0
took() { say "   (${SECONDS} s so far)"; }
say "== sparq gpu/check.sh, $(date -u +%Y-%m-%d)"
say "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
say "sparq $(git rev-parse --short HEAD 2>/dev/null || echo "(no git)")"
if [ -f "$build/VERSION" ]; then say "prebuilt: $(cat "$build/VERSION")"; fi

# Every part runs under a time limit, so that a hang (a kernel that never ends) costs that part,
# not the rest of the check, and no part may run past the whole check's budget, so that the
# summary comes before the caller's own limit (a device command's, say): a part stopped by its
# limit exits with 124 (137 when it had to be killed), one left no time with 124 at once.
budget="${SPARQ_CHECK_BUDGET:-500}"
limit() {
  local seconds=$1 left=$((budget - SECONDS))
  shift
  if [ "$left" -le 5 ]; then
    echo "(not run: the check's ${budget} s budget is spent)"
    return 124
  fi
  [ "$seconds" -gt "$left" ] && seconds=$left
  timeout --kill-after=5 "$seconds" "$@"
}
say "== GPU tests"
failed_tests=0
for t in test_cuda_api test_cuda_kernels test_cuda_encoder; do
  # A failing suite is reported and counted; the benchmark still runs.
  status=0
  limit 240 $build/tests/$t --gtest_brief=1 >"$build/$t.log" 2>&1 || status=$?
  if [ $status -ne 0 ]; then
    failed_tests=$((failed_tests + 1))
    case $status in
      124 | 137) why=" (stopped by its time limit)" ;;
      *) why="" ;;
    esac
    echo "$t: exit status $status$why" >>"$build/$t.log"
  fi
  tee -a "$log" <"$build/$t.log" | tail -3
  took
done

bench() { limit 120 $build/bench/sparq-bench spmm --device cuda --min-reps 50 --min-seconds 1 "$@" \
  2>&1 | tee -a "$log" || true; }
say "== 2:4 vs cuBLASLt dense, 4096 x 4096 x 4096 (\"sparq plan:\" lines: what each library was"
say "   tuned to, SPARQ_LOG_PLANS)"
export SPARQ_LOG_PLANS=1
bench --dtype f16 --pattern 2:4 --shapes 4096x4096 --tokens 4096
bench --dtype int8 --pattern 2:4 --shapes 4096x4096 --tokens 4096
say "   the same fp16 layers without bias (the bare matmul of published 2:4 vs dense figures):"
bench --dtype f16 --pattern 2:4 --shapes 4096x4096 --tokens 4096 --no-bias | tee "$build/no_bias.log"
unset SPARQ_LOG_PLANS
took
say "== 2:4 vs dense, BERT-base linear shapes (qkv, attention out, intermediate, output)"
for dtype in f16 int8; do
  bench --dtype $dtype --pattern 2:4 --shapes 2304x768,768x768,3072x768,768x3072 \
    --tokens 128,4096 | grep -v '^dtype' || true
done
took
say "== block-sparse at 90 % (sparq's BSR tensor-core kernel or cuSPARSE Blocked-ELL, whichever"
say "   was faster at pack time: see the kernel column) vs dense"
for p in 16x16 32x32; do
  bench --dtype f16 --pattern $p --sparsity 0.9 --shapes 3072x768,4096x4096 --tokens 128,4096
done
took
say "== int8 block-sparse at 90 % (sparq's int8 BSR kernel) vs cuBLASLt dense int8"
bench --dtype int8 --pattern 32x32 --sparsity 0.9 --shapes 3072x768,4096x4096 --tokens 128,4096
took
say "== BERT-base end to end, batch 32 x seq 128, fp16"
eval_out=$(limit 150 $build/bench/sparq-eval --synthetic bert-base --device cuda --dtype f16 \
  --pattern 2:4 --batch 32 --seq 128 --iters 30 --warmup 5 --compare dense 2>&1 || true)
say "$eval_out"
took
say "== where the time goes, 2:4 and dense (a separate run: CUDA events around every stage)"
profile_out=$(limit 150 $build/bench/sparq-eval --synthetic bert-base --device cuda \
  --dtype f16 --pattern 2:4 --batch 32 --seq 128 --iters 10 --warmup 3 --compare dense --profile \
  2>&1 || true)
say "$profile_out"
took

say "== summary"
# The speedup column of the first row for dtype, pattern, OUTxIN and tokens in the log (or $5).
ratio() { awk -v d="$1" -v p="$2" -v s="$3" -v t="$4" \
  '$1==d && $2==p && $3"x"$4==s && $5==t {print $9; exit}' "${5:-$log}"; }
say "2:4 f16  4096^3: $(ratio f16 2:4 4096x4096 4096) of cuBLASLt dense fp16 (target >= 1.2x)"
say "2:4 f16  4096^3 without bias: $(ratio f16 2:4 4096x4096 4096 "$build/no_bias.log") of\
 cuBLASLt dense fp16 without bias"
say "2:4 int8 4096^3: $(ratio int8 2:4 4096x4096 4096) of cuBLASLt dense int8"
say "BERT-base b32 s128 fp16, 2:4 vs dense: $(echo "$eval_out" | grep -i 'speedup' | head -1)"
say "  the GPU's time in the encoder stages (no upload, no download), 2:4 vs dense:\
$(echo "$profile_out" | grep 'stages_total' | head -1)"
say "GPU test suites failing: $failed_tests of 3"
say "time: ${SECONDS} s for tests and benchmark (target: under 480 s on an H100)"
say "cuSPARSELt: $(grep -o 'cuSPARSELt [0-9.]*' "$log" | head -1 || true)"
exit $((failed_tests > 0))
