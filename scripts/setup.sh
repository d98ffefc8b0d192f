#!/usr/bin/env bash
# Creates .venv and installs a requirements file into it, once per change of that file.
# Usage: source scripts/setup.sh requirements.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "[cnn-lens] creating virtual environment in .venv" >&2
  "$py" -m venv "$root/.venv"
  "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$root/.venv/.deps-$(basename "$req").sha"
want="$(cat "$root/$req" "$root"/requirements*.txt 2>/dev/null | sha1sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[cnn-lens] installing $req (first time: a few minutes, ~5 GB for torch)" >&2
  "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/$req"
  echo "$want" > "$stamp"
fi
