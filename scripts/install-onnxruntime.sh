#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that `export` and `serve` load, into .runtime/ of the
# project (idempotent: does nothing when it is already there).
#
#   scripts/install-onnxruntime.sh          # CPU: onnxruntime==1.31.1 (about 29 MB unpacked)
#   scripts/install-onnxruntime.sh --cuda   # CUDA 13: onnxruntime-gpu==1.31.1 and its providers
#
# The library comes from the PyPI wheel (the default download of the `ort` crate comes from a CDN
# that many networks, ours included, cannot reach). Needs python3 with pip, and unzip.
set -euo pipefail

version=1.31.1
package=onnxruntime
if [ "${1:-}" = "--cuda" ]; then
  package=onnxruntime-gpu
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--cuda]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.runtime/onnxruntime"
library="$target/libonnxruntime.so.$version"
if [ -f "$library" ] && { [ "$package" = onnxruntime ] || [ -f "$target/libonnxruntime_providers_cuda.so" ]; }; then
  exit 0
fi

for tool in python3 unzip; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed to install ONNX Runtime" >&2; exit 1; }
done
python3 -m pip --version >/dev/null 2>&1 || { echo "error: python3 -m pip is needed to install ONNX Runtime" >&2; exit 1; }

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
echo "installing $package==$version into $target" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$package==$version"
wheel=$(ls "$wheels"/*.whl)
mkdir -p "$target"
unzip -q -o -j "$wheel" 'onnxruntime/capi/libonnxruntime*.so*' -d "$target"
[ -f "$library" ] || { echo "error: $wheel holds no libonnxruntime.so.$version" >&2; exit 1; }
echo "ONNX Runtime $version: $library" >&2
