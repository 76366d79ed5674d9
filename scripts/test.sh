#!/usr/bin/env bash
# Run every test. Sets itself up first (scripts/setup.sh), so it works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
