#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it:
#   Debian packages: influxdb (a real influxd for the store tests), postgresql (metadata database tests),
#   mosquitto (MQTT broker for the bracelet tests), chromium + fonts-noto-cjk (browser tests, Chinese text; the
#   CJK font is also embedded, subset, in PDF reports), poppler-utils (tests render and read the PDFs);
#   a Python virtual environment in .venv with the project and its test extras.
# Arguments are passed to pytest (e.g. bash scripts/test.sh -k contract).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(influxdb postgresql mosquitto chromium fonts-noto-cjk poppler-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
