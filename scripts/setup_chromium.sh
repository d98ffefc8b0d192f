#!/usr/bin/env bash
# Installs Debian's Chromium (and the emoji and Korean fonts the screenshots need) for the browser tests,
# once: a no-op when they are there. Playwright's own browser download is not used (it needs Playwright's
# CDN; the distribution package does not). Never fatal: without Chromium the browser tests skip and say why.
set -uo pipefail
want=()
if ! { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; }; then
  want+=(chromium chromium-driver)
fi
if command -v dpkg-query >/dev/null 2>&1; then
  for font in fonts-noto-color-emoji fonts-nanum; do
    dpkg-query -W -f='${Status}' "$font" 2>/dev/null | grep -q "ok installed" || want+=("$font")
  done
fi
[ ${#want[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[cnn-lens] missing ${want[*]} and no apt-get here: browser tests skip without chromium" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  echo "[cnn-lens] missing ${want[*]}; install with: sudo apt-get install ${want[*]} (browser tests skip without chromium)" >&2
  exit 0
fi
echo "[cnn-lens] installing ${want[*]} for the browser tests (apt-get, once)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null; }; then
  echo "[cnn-lens] could not install ${want[*]}: browser tests skip without chromium" >&2
fi
exit 0
