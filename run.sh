#!/usr/bin/env bash
# Installs what CNN Lens needs (once) and starts the app; works offline with the default backbone.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh requirements.txt
# without a terminal (a service, a script, CI) nobody can answer Streamlit's first-run email prompt
if [ ! -t 0 ]; then set -- --server.headless true "$@"; fi
exec .venv/bin/python -m streamlit run app.py "$@"
