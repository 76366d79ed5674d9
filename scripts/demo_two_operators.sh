#!/usr/bin/env bash
# Two operators' daemons swap 1 ETH for 20 SOL with each other over A2A, on local chains:
# two keystores, two stores, two data dirs (under .covenant/two-operators), one command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo_two_operators.py "$@"
