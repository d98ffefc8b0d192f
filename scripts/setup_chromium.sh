#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing (once; a no-op afterwards).
# Playwright's own browser download is not used: it needs Playwright's CDN, the distribution package does not.
# Never fatal: without Chromium the browser tests skip and say why.
set -uo pipefail
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[cnn-lens] chromium not found and no apt-get here: the browser tests will be skipped" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  echo "[cnn-lens] chromium not found; install it with: sudo apt-get install chromium (the browser tests will be skipped)" >&2
  exit 0
fi
echo "[cnn-lens] installing chromium for the browser tests (apt-get, once)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
  echo "[cnn-lens] could not install chromium: the browser tests will be skipped" >&2
fi
exit 0
