#!/usr/bin/env bash
# The GGUF export of the llama.cpp comparison (bench/peers/llama_gguf.py) on a synthetic decoder
# and on the tiny Qwen2 of the fixtures:
# sparq-eval saves llama-tiny as a Hugging Face folder, the script writes it as F32 and Q8_0 GGUF,
# and sparq's greedy continuation of one prompt from the F32 file must equal the folder's (the
# dequantization is exact, so this checks the rotary row permutation and the metadata); the Q8_0
# file must load and generate. When llama-cpp-python is importable too, llama.cpp's greedy ids on
# the F32 file must equal sparq's. Skips (77) without a Python that has gguf, numpy, safetensors.
#   llama_gguf_export.sh SPARQ_EVAL SPARQ_GENERATE REPO_ROOT
set -euo pipefail
eval_bin="$1" generate_bin="$2" root="$3"
python="${SPARQ_TOOLS_PYTHON:-${SPARQ_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/tools-venv}/bin/python}"
if ! "$python" -c "import gguf, numpy, safetensors" 2>/dev/null; then
  echo "no Python with gguf, numpy and safetensors ($python; scripts/python-tools.sh makes one): skipped"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$eval_bin" --synthetic llama-tiny --pattern dense --dtype f32 --threads 2 --prompt-tokens 2 \
  --gen-tokens 1 --iters 1 --warmup 0 --save "$work/model" --format json >/dev/null
for type in f32 q8_0; do
  "$python" "$root/bench/peers/llama_gguf.py" "$work/model" "$work/model-$type.gguf" --type "$type"
done
ids=5,9,100,200,7,311
generate() {
  "$generate_bin" --model "$1" --prompt-ids "$ids" --max-tokens 16 --dtype f32 --threads 2 \
    --print-ids 2>/dev/null
}
folder=$(generate "$work/model")
f32=$(generate "$work/model-f32.gguf")
q8=$(generate "$work/model-q8_0.gguf")
echo "folder:    $folder"
echo "F32 GGUF:  $f32"
echo "Q8_0 GGUF: $q8"
[ "$folder" = "$f32" ] || { echo "FAIL: the F32 GGUF does not compute what the folder does"; exit 1; }
[ "$(echo "$q8" | tr ',' '\n' | wc -l)" -eq 16 ] || { echo "FAIL: Q8_0 generation"; exit 1; }
if "$python" -c "import llama_cpp" 2>/dev/null; then
  llama=$("$python" "$root/bench/peers/llamacpp_bench.py" "$work/model-f32.gguf" --greedy-ids "$ids" \
    --max-tokens 16 --threads 2 2>/dev/null)
  echo "llama.cpp: $llama"
  [ "$llama" = "$f32" ] || { echo "FAIL: llama.cpp and sparq disagree on the F32 GGUF"; exit 1; }
fi
# Qwen2 (q/k/v biases, NeoX rotary order kept): the tiny transformers model of the fixtures as an
# F32 GGUF must generate transformers' greedy continuation, as its folder does (and llama.cpp too,
# when importable).
qwen2="$root/tests/fixtures/qwen2_tiny"
"$python" "$root/bench/peers/llama_gguf.py" "$qwen2" "$work/qwen2-f32.gguf" --type f32
qids=5,77,301,12,190,45,45,260,3,118,64,250
want=$("$python" -c "import json, sys; print(','.join(map(str, json.load(open(sys.argv[1]))['greedy_16'])))" \
  "$root/tests/fixtures/qwen2_reference.json")
qwen2_gguf=$("$generate_bin" --model "$work/qwen2-f32.gguf" --prompt-ids "$qids" --max-tokens 16 \
  --dtype f32 --threads 2 --print-ids 2>/dev/null)
echo "Qwen2 transformers: $want"
echo "Qwen2 F32 GGUF:     $qwen2_gguf"
[ "$qwen2_gguf" = "$want" ] || { echo "FAIL: the Qwen2 GGUF does not compute what transformers does"; exit 1; }
if "$python" -c "import llama_cpp" 2>/dev/null; then
  llama=$("$python" "$root/bench/peers/llamacpp_bench.py" "$work/qwen2-f32.gguf" --greedy-ids "$qids" \
    --max-tokens 16 --threads 2 2>/dev/null)
  echo "Qwen2 llama.cpp:    $llama"
  [ "$llama" = "$want" ] || { echo "FAIL: llama.cpp and transformers disagree on the Qwen2 GGUF"; exit 1; }
fi
echo "export ok"
