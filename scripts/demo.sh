#!/usr/bin/env bash
# Set up the project in .venv and run the portal on the demo park (embedded store, no server to install).
# Arguments are passed to `parkcarbon demo` (e.g. --port 8060, --days 90).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/parkcarbon demo "$@"
