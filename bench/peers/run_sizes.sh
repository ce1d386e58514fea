#!/usr/bin/env bash
# The peers table for several BERT sizes, sequence lengths and sparsities, one bench/peers/run.sh
# run each (same pruned weights in every runtime of a run), the tables collected in one file:
#   bench/peers/run_sizes.sh [--models bert-mini,distilbert,bert-base,bert-large] [--seqs 128,384]
#                            [--sparsities 0.9,0.8] [--pattern 4x1] [--threads 2] [--iters 50]
#                            [--out FILE]   (default ${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/sizes.md)
# Each run prints sparq int8, fp32 and bf16 at that sparsity beside sparq's dense model, PyTorch, ONNX
# Runtime fp32 / int8 and DeepSparse fp32 / int8 (when it installs). bert-large at 384 tokens takes
# several minutes per run on two cores (PyTorch and the static-quantization peers dominate).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models=bert-mini,distilbert,bert-base,bert-large seqs=128,384 sparsities=0.9,0.8 pattern=4x1
threads=2 iters=50 out="${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/sizes.md"
while (($#)); do
  case "$1" in
    --models) models="$2" ;;
    --seqs) seqs="$2" ;;
    --sparsities) sparsities="$2" ;;
    --pattern) pattern="$2" ;;
    --threads) threads="$2" ;;
    --iters) iters="$2" ;;
    --out) out="$2" ;;
    *) echo "usage: $0 [--models LIST] [--seqs LIST] [--sparsities LIST] [--pattern P]" \
         "[--threads T] [--iters N] [--out FILE]" >&2; exit 2 ;;
  esac
  shift 2
done
mkdir -p "$(dirname "$out")"
: >"$out"
IFS=, read -ra model_list <<<"$models"
IFS=, read -ra seq_list <<<"$seqs"
IFS=, read -ra sparsity_list <<<"$sparsities"
for m in "${model_list[@]}"; do
  for s in "${seq_list[@]}"; do
    for sp in "${sparsity_list[@]}"; do
      echo "run_sizes: $m, seq $s, $pattern at $sp" >&2
      {
        echo "### $m, seq $s, $pattern at $sp"
        echo
        "$here/run.sh" --synthetic "$m" --sparsity "$sp" --pattern "$pattern" --seq "$s" \
          --threads "$threads" --iters "$iters"
        echo
      } >>"$out"
    done
  done
done
cat "$out"
