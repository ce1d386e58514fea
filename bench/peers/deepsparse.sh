#!/usr/bin/env bash
# Creates (once) DeepSparse's own virtual environment (it pins older onnx and numpy than the main
# peers environment) and prints its python; prints nothing and exits 1 when DeepSparse cannot be
# installed here. Location: ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/deepsparse-venv.
set -uo pipefail
venv="${SPARQ_DEEPSPARSE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/deepsparse-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import deepsparse" 2>/dev/null; then
  echo "sparq: setting up DeepSparse in $venv" >&2
  python3 -m venv "$venv" >&2 &&
    "$venv/bin/pip" install --quiet --upgrade pip >&2 &&
    "$venv/bin/pip" install --quiet "deepsparse==1.8.0" >&2 || {
    echo "sparq: DeepSparse could not be installed (it ships wheels for Python <= 3.11)" >&2
    exit 1
  }
fi
echo "$venv/bin/python"
