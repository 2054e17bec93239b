#!/usr/bin/env bash
# Headless Chromium for the pages' browser tests (tests/page.rs): Debian's `chromium` package,
# with a font for the page's text. Nothing is done when a Chromium is already there (on PATH,
# or named by CHROMIUM).
#
#   scripts/install-chromium.sh
set -euo pipefail
if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] || { echo "error: CHROMIUM=$CHROMIUM is not an executable" >&2; exit 1; }
  exit 0
fi
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null && exit 0
done
if ! command -v apt-get >/dev/null; then
  echo "error: no Chromium, and no apt-get to install Debian's: install Chromium or Chrome," \
    "or set CHROMIUM to its binary" >&2
  exit 1
fi
echo "installing Debian's chromium (for the browser tests)" >&2
"$(dirname "$0")/apt-install.sh" chromium chromium fonts-dejavu-core
echo "$(chromium --version 2>/dev/null)" >&2
