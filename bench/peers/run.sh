#!/usr/bin/env bash
# sparq beside its peers on one model, batch, sequence length and thread count:
#   bench/peers/run.sh [--synthetic bert-base] [--sparsity 0.9] [--pattern 4x1] [--batch 1]
#                      [--seq 128] [--threads 2] [--iters 100]
# 1. sparq-eval builds the synthetic model, prunes it, times sparq int8 and fp32 (each beside
#    sparq's own dense model) and saves the pruned weights as a Hugging Face folder;
# 2. peers.py runs those same weights on PyTorch, ONNX Runtime fp32 and int8, and DeepSparse
#    (when it installs here), with the same inputs shape and threads;
# 3. table.py prints one Markdown table (the README keeps the latest, with date and machine).
# Work files (the model, ONNX exports, JSON lines): ${SPARQ_PEERS_WORK:-/tmp/sparq-peers}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
synthetic=bert-base sparsity=0.9 pattern=4x1 batch=1 seq=128 threads=2 iters=100
while (($#)); do
  case "$1" in
    --synthetic) synthetic="$2" ;;
    --sparsity) sparsity="$2" ;;
    --pattern) pattern="$2" ;;
    --batch) batch="$2" ;;
    --seq) seq="$2" ;;
    --threads) threads="$2" ;;
    --iters) iters="$2" ;;
    *) echo "usage: $0 [--synthetic NAME] [--sparsity S] [--pattern P] [--batch B] [--seq N]" \
         "[--threads T] [--iters N]" >&2; exit 2 ;;
  esac
  shift 2
done
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
export SPARQ_DEEPSPARSE_PYTHON="$("$here/deepsparse.sh" || true)"
echo "peers: PyTorch, ONNX Runtime fp32 / int8 dynamic / int8 static, DeepSparse fp32 / int8" >&2
"$python" "$here/peers.py" --model "$work/model" --work "$work" --batch "$batch" --seq "$seq" \
  --threads "$threads" --iters "$iters" --warmup 10 >>"$results"
echo "sparq-eval: int8 again (drift check)" >&2
"$eval_bin" "${common[@]}" --dtype int8 >>"$results"
"$python" "$here/table.py" "$results"
