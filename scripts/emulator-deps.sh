#!/usr/bin/env bash
# Creates (once) the cache virtual environment holding the instruction-set emulator the kernel
# tests use to run JIT kernels for ISAs this machine lacks (AVX-512 VNNI / BF16 on an AVX2
# machine): bochscpu-python 0.4.0 from PyPI, Bochs 3.0's CPU as a library (tests/emulator/ loads
# its C functions; no Python runs in the tests). Location: $SPARQ_EMULATOR_VENV, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/emulator-venv. The version is pinned: the tests rely on
# the module's state layout and CPU model list. Exits 0 with a message when it cannot be made (no
# network, no venv module): the emulated kernel tests then skip and say why.
set -uo pipefail
venv="${SPARQ_EMULATOR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/emulator-venv}"
pin="bochscpu-python==0.4.0"
if compgen -G "$venv/lib/python3*/site-packages/bochscpu/_bochscpu*.so" >/dev/null &&
  "$venv/bin/pip" show bochscpu-python 2>/dev/null | grep -qx 'Version: 0.4.0'; then
  exit 0
fi
echo "sparq: setting up $venv ($pin)"
if ! python3 -m venv "$venv" ||
  ! "$venv/bin/pip" install --quiet --no-deps --only-binary=:all: "$pin"; then
  echo "sparq: could not set up $venv (the emulated kernel tests will skip)" >&2
fi
exit 0
