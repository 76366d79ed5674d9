#!/usr/bin/env bash
# Run the demo deployment end to end: local chains, the embedded model, three agents.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python main.py run config/demo.yaml "$@"
