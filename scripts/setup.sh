#!/usr/bin/env bash
# Creates .venv and installs a requirements file into it, once per change of that file.
# Usage: source scripts/setup.sh requirements.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
fresh=0
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "[cnn-lens] creating virtual environment in .venv" >&2
  "$py" -m venv "$root/.venv"
  "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
  fresh=1
fi
stamp="$root/.venv/.deps-$(basename "$req").sha"
# one hash over every requirements file: a stamp that matches means the same files were installed
want="$(cat "$root"/requirements*.txt 2>/dev/null | sha1sum | cut -d' ' -f1)"
# requirements-dev.txt starts with -r requirements.txt: once it is installed, the app's needs are too
if [ "$req" = "requirements.txt" ] && [ "$(cat "$root/.venv/.deps-requirements-dev.txt.sha" 2>/dev/null)" = "$want" ]; then
  echo "$want" > "$stamp"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ "$fresh" = 1 ]; then
    echo "[cnn-lens] installing $req (first time: a few minutes, ~5 GB for torch)" >&2
  else
    echo "[cnn-lens] $req changed: updating .venv" >&2
  fi
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/$req"
  echo "$want" > "$stamp"
fi
