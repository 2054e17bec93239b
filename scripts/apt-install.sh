#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo, without recommended packages;
# refreshes the package lists only if the first try fails (a fresh machine may have none yet).
# The install scripts call it (install-chromium.sh, install-vulkan-sw.sh).
#
#   scripts/apt-install.sh WHAT PACKAGE...    # WHAT names the purpose in messages
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/apt-install.sh WHAT PACKAGE..." >&2; exit 2; }
what=$1
shift
if ! command -v apt-get >/dev/null; then
  echo "error: no apt-get to install $what ($*)" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: installing $what needs root (or sudo)" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
  || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
