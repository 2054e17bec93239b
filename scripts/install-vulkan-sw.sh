#!/usr/bin/env bash
# A software Vulkan device for the GPU-path test (train-cli/tests/gpu_path.rs): Mesa's lavapipe,
# a conformant Vulkan 1.3 driver that runs on the CPU (Debian's `mesa-vulkan-drivers`), with the
# Vulkan loader and `vulkaninfo`. Nothing is installed where a Vulkan device already answers.
#
#   scripts/install-vulkan-sw.sh
#
# Picking the device: burn's `--device wgpu` takes the adapter wgpu prefers, a real GPU before
# a software one. `CUBECL_WGPU_DEFAULT_DEVICE=Cpu` picks lavapipe on a machine that has both;
# `VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json` hides every other driver.
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: scripts/install-vulkan-sw.sh (no arguments)" >&2; exit 2; }

devices() { # the Vulkan devices that answer, one "name (type)" per line
  command -v vulkaninfo >/dev/null || return 0
  vulkaninfo --summary 2>/dev/null \
    | awk -F'= ' '/deviceType/ {type=$2} /deviceName/ {print $2 " (" type ")"}'
}

if [ -n "$(devices)" ]; then
  devices | sed 's/^/Vulkan device: /' >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "error: no Vulkan device, and no apt-get to install Mesa's lavapipe: install your" \
    "distribution's Mesa Vulkan drivers (lavapipe) and the Vulkan loader" >&2
  exit 1
fi
echo "installing Mesa's lavapipe (a Vulkan device on the CPU, for the GPU-path tests)" >&2
"$(dirname "$0")/apt-install.sh" lavapipe mesa-vulkan-drivers libvulkan1 vulkan-tools
if [ -z "$(devices)" ]; then
  echo "error: lavapipe is installed but no Vulkan device answers (vulkaninfo --summary)" >&2
  exit 1
fi
devices | sed 's/^/Vulkan device: /' >&2
