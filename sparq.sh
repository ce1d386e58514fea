#!/usr/bin/env bash
# The two set-up commands of the README:
#   ./sparq.sh demo   installs what is missing, builds, runs the kernel benchmark on BERT-base shapes
#   ./sparq.sh test   installs what is missing, builds, runs the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
  demo)
    scripts/install-deps.sh
    scripts/build.sh
    exec build/bench/sparq-bench spmm --dtype int8 --pattern 4x1 --shapes 3072x768,768x3072 \
      --tokens 128 --sparsity 0.7,0.8,0.9 --threads 1
    ;;
  test)
    scripts/install-deps.sh
    scripts/build.sh
    cd build && exec ctest --output-on-failure -j"$(nproc)"
    ;;
  *)
    echo "usage: ./sparq.sh demo|test" >&2
    exit 2
    ;;
esac
