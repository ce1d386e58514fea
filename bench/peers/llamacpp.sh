#!/usr/bin/env bash
# Creates (once) a virtual environment with llama-cpp-python built from source on this machine
# (PyPI ships no CPU wheel; the build compiles llama.cpp with GGML_NATIVE, so it uses this CPU's
# vector extensions), plus numpy, gguf and safetensors for the weight export, and prints its python. Prints
# nothing and exits 1 when the build fails. The build takes ~10-20 minutes on 2 cores.
# Location: ${SPARQ_LLAMACPP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/llamacpp-venv}.
# SPARQ_LLAMACPP_CMAKE_ARGS replaces the CMake arguments (with another SPARQ_LLAMACPP_VENV; pip's
# wheel cache is bypassed, or it would reinstall the build made with other arguments): on a
# virtual machine with AMX visible, llama.cpp 0.3.36's AMX kernels (built in by GGML_NATIVE) died
# of a general protection fault at ldtilecfg; a build without them:
#   SPARQ_LLAMACPP_VENV=~/.cache/sparq/llamacpp-noamx-venv SPARQ_LLAMACPP_CMAKE_ARGS="-DGGML_NATIVE=OFF
#   -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON
#   -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON -DGGML_OPENMP=ON
#   -DLLAMA_CURL=OFF"
set -uo pipefail
cmake_args="${SPARQ_LLAMACPP_CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF}"
version="0.3.36"
venv="${SPARQ_LLAMACPP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/llamacpp-venv}"
if [ ! -x "$venv/bin/python" ] ||
  ! "$venv/bin/python" -c "import llama_cpp, gguf, numpy, safetensors" 2>/dev/null; then
  echo "sparq: building llama-cpp-python $version in $venv (compiles llama.cpp)" >&2
  python3 -m venv "$venv" >&2 &&
    "$venv/bin/pip" install --quiet --upgrade pip >&2 &&
    "$venv/bin/pip" install --quiet "numpy>=1.26" "gguf>=0.10" "safetensors>=0.4" >&2 &&
    CMAKE_ARGS="$cmake_args" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$venv/bin/pip" install --quiet --no-cache-dir --no-binary llama-cpp-python \
      "llama-cpp-python==$version" >&2 || {
    echo "sparq: llama-cpp-python could not be built (needs a C++ compiler and cmake)" >&2
    exit 1
  }
fi
echo "$venv/bin/python"
