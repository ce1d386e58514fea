#!/usr/bin/env bash
# Creates (once) the small virtual environment in which the tests drive sparq's Python tools:
# gguf, numpy and safetensors, for bench/peers/llama_gguf.py (the GGUF export of the llama.cpp
# comparison, checked by the test llama_gguf_export). Location: $SPARQ_TOOLS_VENV, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/tools-venv. Exits 0 with a message when it cannot be made
# (no network, no venv module): that test then skips and says why.
set -uo pipefail
venv="${SPARQ_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/tools-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import gguf, numpy, safetensors" 2>/dev/null
then
  exit 0
fi
echo "sparq: setting up $venv (gguf, numpy, safetensors)"
if ! python3 -m venv "$venv" ||
  ! "$venv/bin/pip" install --quiet "gguf>=0.10" "numpy>=1.26" "safetensors>=0.4"; then
  echo "sparq: could not set up $venv (the test llama_gguf_export will skip)" >&2
fi
exit 0
