#!/usr/bin/env bash
# Installs what the tests need (once) and runs every check: ruff, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements-dev.txt
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
