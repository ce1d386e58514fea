#!/usr/bin/env bash
# On machines with the CUDA toolkit (nvcc), installs cuSPARSELt, the library behind sparq's 2:4
# layers on NVIDIA GPUs, from PyPI (nvidia-cusparselt-cu13: include/cusparseLt.h and the shared
# library) into a virtual environment: $SPARQ_CUDA_VENV, else ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/
# cuda-venv, where CMake looks for it. Without nvcc it does nothing. Exits 0 when it cannot install
# (no network): the build then compiles the 2:4 GPU path out and says so.
set -uo pipefail
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  exit 0
fi
venv="${SPARQ_CUDA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/cuda-venv}"
if compgen -G "$venv/lib/python3*/site-packages/nvidia/cu13/include/cusparseLt.h" >/dev/null; then
  exit 0
fi
# Already in the python3 on PATH (GPU images with PyTorch carry the wheel): CMake finds it there.
if python3 - <<'PY' 2>/dev/null
import glob, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
sys.exit(0 if any(glob.glob(d + "/nvidia/*/include/cusparseLt.h") for d in dirs) else 1)
PY
then
  exit 0
fi
echo "sparq: installing cuSPARSELt (nvidia-cusparselt-cu13, ~250 MB) into $venv"
if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install --quiet "nvidia-cusparselt-cu13>=0.8"
then
  echo "sparq: could not install cuSPARSELt; the CUDA backend builds without its 2:4 path" >&2
fi
exit 0
