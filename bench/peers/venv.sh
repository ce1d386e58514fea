#!/usr/bin/env bash
# Creates (once) the virtual environment that the peer benchmarks and the reference-fixture
# scripts run in, and prints its python. Location: $SPARQ_VENV, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/peers-venv. Packages: bench/peers/requirements.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SPARQ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/peers-venv}"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  echo "sparq: setting up the Python environment in $venv (torch, transformers, onnxruntime)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
