#!/usr/bin/env bash
# Installs what the tests need (once) and runs every check: ruff, then the whole pytest suite (browser tests included).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements-dev.txt
bash scripts/setup_chromium.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
