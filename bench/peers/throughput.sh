#!/usr/bin/env bash
# Throughput under a latency bound, sparq beside ONNX Runtime and DeepSparse on the same pruned
# weights (the sparse-accelerator paper's headline measure):
#   bench/peers/throughput.sh [--synthetic bert-base] [--sparsity 0.9] [--pattern 4x1] [--seq 128]
#                             [--bound 50] [--requests 200]
# Every runtime serves the same stream at every (instances N, threads per instance K) with
# N x K <= cores: sparq int8 through sparq-eval --latency-bound (separate and shared model
# objects), ONNX Runtime fp32 and int8 (N sessions of K threads) and DeepSparse fp32 (one engine,
# N streams over N x K cores) through throughput.py. Prints, per runtime, the highest throughput
# whose p90 stays within the bound, and every point. On a many-core server the same command
# explores N, K in powers of two up to the core count (~28 points on 64 cores).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
synthetic=bert-base sparsity=0.9 pattern=4x1 seq=128 bound=50 requests=200
while (($#)); do
  case "$1" in
    --synthetic) synthetic="$2" ;;
    --sparsity) sparsity="$2" ;;
    --pattern) pattern="$2" ;;
    --seq) seq="$2" ;;
    --bound) bound="$2" ;;
    --requests) requests="$2" ;;
    *) echo "usage: $0 [--synthetic NAME] [--sparsity S] [--pattern P] [--seq N] [--bound MS]" \
         "[--requests N]" >&2; exit 2 ;;
  esac
  shift 2
done
work="${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/$synthetic-$pattern-$sparsity"
mkdir -p "$work"
eval_bin="$root/build/bench/sparq-eval"
[ -x "$eval_bin" ] || "$root/scripts/build.sh"
python=$("$here/venv.sh")
cores=$(nproc)
results="$work/throughput.jsonl"
: >"$results"
echo "sparq-eval: int8 (and saving the pruned model to $work/model)" >&2
"$eval_bin" --synthetic "$synthetic" --sparsity "$sparsity" --pattern "$pattern" --dtype int8 \
  --seq "$seq" --latency-bound "$bound" --requests "$requests" --format json \
  --save "$work/model" >>"$results"
rm -f "$work"/*.onnx "$work"/*.onnx.data  # exports of an earlier model
echo "ONNX exports (peers.py)" >&2
"$python" "$here/peers.py" --model "$work/model" --work "$work" --seq "$seq" --iters 1 \
  --warmup 0 --runtimes ort-fp32,ort-int8 >/dev/null
for rt in ort-fp32 ort-int8; do
  onnx="$work/model_optimized.onnx"
  [ "$rt" = ort-int8 ] && onnx="$work/model_int8.onnx"
  echo "throughput.py: $rt" >&2
  "$python" "$here/throughput.py" --runtime "$rt" --onnx "$onnx" --seq "$seq" --cores "$cores" \
    --requests "$requests" --latency-bound "$bound" >>"$results"
done
if ds_python="$("$here/deepsparse.sh")"; then
  echo "throughput.py: deepsparse" >&2
  "$ds_python" "$here/throughput.py" --runtime deepsparse --onnx "$work/model.onnx" \
    --seq "$seq" --cores "$cores" --requests "$requests" --latency-bound "$bound" >>"$results" ||
    echo '{"runtime": "deepsparse", "skipped": "throughput.py failed in its venv"}' >&2
fi
echo "$synthetic, $pattern at $sparsity, seq $seq, $cores cores, $(date -u +%F)"
echo
"$python" "$here/throughput_table.py" "$results" "$bound"
# Throughput vs p90 latency chart (gnuplot): $work/charts/throughput.png
"$python" "$here/charts.py" throughput "$results" "$work/charts" >&2 || true
