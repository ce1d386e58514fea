#!/usr/bin/env bash
# sparq beside llama.cpp on the same decoder weights, threads, prompt and generation lengths:
#   bench/peers/llama_run.sh [--synthetic llama-1b] [--threads 2] [--prompt-tokens 512]
#                            [--gen-tokens 128] [--iters 2] [--rounds 2] [--act-sparsity 0.4]
#                            [--dtypes int8,bf16]
# 1. sparq-eval makes the synthetic model's random weights and saves them as a Hugging Face
#    folder; llama_gguf.py exports that folder to GGUF Q8_0 and Q4_0 (the gguf package);
# 2. a check that both runtimes compute the same model: greedy ids of sparq (fp32, on the Q8_0
#    file) and llama.cpp (on the same file) for one prompt;
# 3. --rounds rounds, each timing in turn: sparq dense, 2:4, 70 % 16x1 blocks in each of --dtypes
#    (int8 by default; bf16 adds the same three in bf16; sparq-eval, pruning the same weights by
#    magnitude at load) and llama.cpp Q8_0 and Q4_0
#    (llamacpp_bench.py), so that the VM's slow minutes fall on every row alike;
#    With --act-sparsity A also sparq int8 dense and 2:4 with activation-sparsity thresholds
#    calibrated (sparq-eval --calibrate random) to zero the fraction A of every projection input;
# 4. llama_table.py prints the Markdown table (the README keeps the latest).
# Work files: ${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/NAME (the fp32 folder of llama-1b is 4.4 GB).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
synthetic=llama-1b threads=2 prompt=512 gen=128 iters=2 rounds=2 act="" dtypes=int8
while (($#)); do
  case "$1" in
    --synthetic) synthetic="$2" ;;
    --threads) threads="$2" ;;
    --prompt-tokens) prompt="$2" ;;
    --gen-tokens) gen="$2" ;;
    --iters) iters="$2" ;;
    --rounds) rounds="$2" ;;
    --act-sparsity) act="$2" ;;
    --dtypes) dtypes="$2" ;;
    *) echo "usage: $0 [--synthetic NAME] [--threads T] [--prompt-tokens N] [--gen-tokens N]" \
         "[--iters N] [--rounds N] [--act-sparsity A] [--dtypes int8,bf16]" >&2; exit 2 ;;
  esac
  shift 2
done
work="${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/$synthetic"
mkdir -p "$work"
bin="$root/build/bench"
[ -x "$bin/sparq-eval" ] && [ -x "$bin/sparq-generate" ] || "$root/scripts/build.sh"
python=$("$here/llamacpp.sh")
if [ ! -f "$work/model/model.safetensors" ]; then
  echo "sparq-eval: saving $synthetic's weights to $work/model" >&2
  "$bin/sparq-eval" --synthetic "$synthetic" --pattern dense --dtype int8 --threads "$threads" \
    --prompt-tokens 2 --gen-tokens 1 --iters 1 --warmup 0 --save "$work/model" --format json \
    >/dev/null
  rm -f "$work"/model-*.gguf
fi
for type in q8_0 q4_0; do
  [ -f "$work/model-$type.gguf" ] ||
    "$python" "$here/llama_gguf.py" "$work/model" "$work/model-$type.gguf" --type "$type"
done

results="$work/results.jsonl"
: >"$results"
ids=17,300,111,250,9,123,310,77  # below every synthetic model's vocabulary size
echo "check: greedy ids of sparq (fp32) and llama.cpp on $work/model-q8_0.gguf" >&2
sparq_ids=$("$bin/sparq-generate" --model "$work/model-q8_0.gguf" --prompt-ids "$ids" \
  --max-tokens 12 --dtype f32 --threads "$threads" --print-ids 2>/dev/null)
status=0
llama_ids=$("$python" "$here/llamacpp_bench.py" "$work/model-q8_0.gguf" --greedy-ids "$ids" \
  --max-tokens 12 --threads "$threads" 2>"$work/llamacpp-check.err") || status=$?
if [ "$status" -ne 0 ]; then
  echo "$0: llama.cpp failed on $work/model-q8_0.gguf (exit status $status; its messages:" \
    "$work/llamacpp-check.err). Where the CPU has AMX, llama-cpp-python 0.3.36's AMX kernels" \
    "have died at ldtilecfg (status 139): build it without them, see SPARQ_LLAMACPP_CMAKE_ARGS" \
    "in bench/peers/llamacpp.sh" >&2
  exit 1
fi
echo "{\"check\": \"greedy ids, Q8_0 file\", \"sparq\": \"$sparq_ids\", \"llama.cpp\": \"$llama_ids\"}" \
  >>"$results"

configs=()  # dtype pattern sparsity thresholds-or-"-"
for dtype in ${dtypes//,/ }; do
  case "$dtype" in
    int8 | bf16 | f32) ;;
    *) echo "$0: --dtypes takes int8, bf16 and f32, got $dtype" >&2; exit 2 ;;
  esac
  configs+=("$dtype dense 0 -" "$dtype 2:4 0.5 -" "$dtype 16x1 0.7 -")
done
if [ -n "$act" ]; then
  for cfg in "dense 0" "2:4 0.5"; do
    set -- $cfg
    thresholds="$work/thresholds-${1/:/of}-$act.json"
    echo "calibrating: sparq int8 $1, $act of every projection input zeroed" >&2
    "$bin/sparq-eval" --synthetic "$synthetic" --dtype int8 --pattern "$1" --sparsity "$2" \
      --threads "$threads" --calibrate random --act-sparsity "$act" --ctx 128 --chunks 4 \
      --input-thresholds "$thresholds" >&2
    configs+=("int8 $1 $2 $thresholds")
  done
fi

for ((r = 1; r <= rounds; r++)); do
  for cfg in "${configs[@]}"; do
    set -- $cfg
    extra=()
    [ "$4" = "-" ] || extra=(--input-thresholds "$4")
    echo "round $r/$rounds: sparq $1 $2 $3${extra[*]:+ with ${4##*/}}" >&2
    "$bin/sparq-eval" --synthetic "$synthetic" --dtype "$1" --pattern "$2" --sparsity "$3" \
      --threads "$threads" --prompt-tokens "$prompt" --gen-tokens "$gen" --iters "$iters" \
      --warmup 1 "${extra[@]}" --format json 2>/dev/null >>"$results"
  done
  for type in q8_0 q4_0; do
    echo "round $r/$rounds: llama.cpp $type" >&2
    "$python" "$here/llamacpp_bench.py" "$work/model-$type.gguf" --threads "$threads" \
      --prompt-tokens "$prompt" --gen-tokens "$gen" --iters "$iters" --warmup 1 2>/dev/null |
      sed "s/^{/{\"quant\": \"${type^^}\", /" >>"$results"
  done
done
"$python" "$here/llama_table.py" "$results"
