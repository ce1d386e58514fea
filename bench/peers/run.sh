#!/usr/bin/env bash
# sparq beside its peers on one model, batch, sequence length and thread count:
#   bench/peers/run.sh [--synthetic bert-base] [--sparsity 0.9] [--pattern 4x1] [--batch 1]
#                      [--seq 128] [--threads 2] [--iters 100]
#   bench/peers/run.sh --models bert-mini,distilbert,bert-base,bert-large [--seqs 128,384]
#                      [--sparsities 0.9,0.8] [--pattern 4x1] [--threads 2] [--iters 50]
#   (several sizes: one run of this script per model, length and sparsity, by run_sizes.sh, the
#   tables collected in one file)
# 1. sparq-eval builds the synthetic model, prunes it, times sparq int8, fp32 and bf16 (each beside
#    sparq's own dense model) and saves the pruned weights as a Hugging Face folder;
# 2. peers.py runs those same weights on PyTorch, ONNX Runtime fp32 and int8, and DeepSparse
#    (when it installs here), with the same inputs shape and threads;
# 3. table.py prints one Markdown table (the README keeps the latest, with date and machine).
# Work files (the model, ONNX exports, JSON lines): ${SPARQ_PEERS_WORK:-/tmp/sparq-peers}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
synthetic=bert-base sparsity=0.9 pattern=4x1 batch=1 seq=128 threads=2 iters=100
models="" seqs="" sparsities=""
while (($#)); do
  case "$1" in
    --models) models="$2" ;;
    --seqs) seqs="$2" ;;
    --sparsities) sparsities="$2" ;;
    --synthetic) synthetic="$2" ;;
    --sparsity) sparsity="$2" ;;
    --pattern) pattern="$2" ;;
    --batch) batch="$2" ;;
    --seq) seq="$2" ;;
    --threads) threads="$2" ;;
    --iters) iters="$2" ;;
    *) echo "usage: $0 [--synthetic NAME | --models LIST [--seqs LIST] [--sparsities LIST]]" \
         "[--sparsity S] [--pattern P] [--batch B] [--seq N] [--threads T] [--iters N]" >&2
       exit 2 ;;
  esac
  shift 2
done
if [ -n "$models" ]; then
  exec "$here/run_sizes.sh" --models "$models" --seqs "${seqs:-$seq}" \
    --sparsities "${sparsities:-$sparsity}" --pattern "$pattern" --threads "$threads" \
    --iters "$iters"
fi
if [ -n "$seqs$sparsities" ]; then
  echo "$0: --seqs and --sparsities go with --models (one model: --seq, --sparsity)" >&2
  exit 2
fi
work="${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/$synthetic-$pattern-$sparsity"
mkdir -p "$work"
eval_bin="$root/build/bench/sparq-eval"
[ -x "$eval_bin" ] || "$root/scripts/build.sh"
python=$("$here/venv.sh")
results="$work/results.jsonl"
: >"$results"
common=(--synthetic "$synthetic" --sparsity "$sparsity" --pattern "$pattern" --batch "$batch"
        --seq "$seq" --threads "$threads" --iters "$iters" --warmup 10 --compare dense
        --format json)
echo "sparq-eval: int8 (and saving the pruned model to $work/model)" >&2
"$eval_bin" "${common[@]}" --dtype int8 --save "$work/model" >>"$results"
rm -f "$work"/*.onnx "$work"/*.onnx.data  # exports of an earlier model
echo "sparq-eval: f32" >&2
"$eval_bin" "${common[@]}" --dtype f32 >>"$results"
echo "sparq-eval: bf16" >&2
"$eval_bin" "${common[@]}" --dtype bf16 >>"$results"
export SPARQ_DEEPSPARSE_PYTHON="$("$here/deepsparse.sh" || true)"
echo "peers: PyTorch, ONNX Runtime fp32 / int8 dynamic / int8 static, DeepSparse fp32 / int8" >&2
"$python" "$here/peers.py" --model "$work/model" --work "$work" --batch "$batch" --seq "$seq" \
  --threads "$threads" --iters "$iters" --warmup 10 >>"$results"
echo "sparq-eval: int8 again (drift check)" >&2
"$eval_bin" "${common[@]}" --dtype int8 >>"$results"
"$python" "$here/table.py" "$results"
