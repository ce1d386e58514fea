#!/usr/bin/env bash
# sparq's sparse kernels beside oneMKL's sparse BLAS (CSR and BSR, inspector-executor with the mm
# hint and optimize), LIBXSMM's fixed-sparsity kernels (libxsmm_sfsspmdm) and oneDNN's dense
# matmul, in one process per case:
#   bench/peers/kernel_peers.sh [--shapes 3072x768,768x3072] [--tokens 128] [--sparsity 0.7,0.8,0.9]
#                               [--threads 1] [--min-seconds 1]
# oneMKL comes from PyPI (mkl-devel, mkl-include) in ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/mkl-venv;
# the program builds into build/ (with -DSPARQ_MKL_ROOT set there). JSON lines of the run:
# ${SPARQ_PEERS_WORK:-/tmp/sparq-peers}/kernel-peers.jsonl, charts in .../charts/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/sparq/mkl-venv"
if [ ! -e "$venv/include/mkl_spblas.h" ]; then
  echo "kernel_peers: installing oneMKL (mkl-devel, mkl-include) into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet mkl-devel mkl-include >&2
fi
# LIBXSMM (Debian's libxsmm-dev) joins the table where it is installed.
if [ ! -e /usr/include/libxsmm_fsspmdm.h ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q libxsmm-dev >/dev/null 2>&1 || echo "kernel_peers: libxsmm-dev did not install; LIBXSMM left out" >&2
fi
cmake -S "$root" -B "$root/build" -DSPARQ_MKL_ROOT="$venv" >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target sparq-kernel-peers >&2
work="${SPARQ_PEERS_WORK:-/tmp/sparq-peers}"
mkdir -p "$work"
: >"$work/kernel-peers.jsonl"
"$root/build/bench/sparq-kernel-peers" --json "$work/kernel-peers.jsonl" "$@"
# Speedup-vs-sparsity charts (gnuplot), one per shape and token count.
python3 "$(dirname "$0")/charts.py" kernels "$work/kernel-peers.jsonl" "$work/charts" >&2 || true
