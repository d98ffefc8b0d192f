#!/usr/bin/env bash
# Installs what CNN Lens needs (once) and starts the app; works offline with the default backbone.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements.txt
exec .venv/bin/python -m streamlit run app.py "$@"
