#!/usr/bin/env bash
# Run the demo deployment end to end: local chains, the embedded model, three agents.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# --fresh: start from empty local chains and store; --ticks 2: each agent ticks twice,
# then the demo prints its summary. Drop both to run it as a long-lived daemon.
exec .venv/bin/python main.py run config/demo.yaml --fresh --ticks 2 "$@"
