#!/usr/bin/env bash
# Installs the benchmark peers into .venv (after ./test.sh or ./run.sh made it). Not needed by the app or tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh requirements-dev.txt
.venv/bin/python -m pip install --quiet -r bench/requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -r bench/requirements-nodeps.txt
