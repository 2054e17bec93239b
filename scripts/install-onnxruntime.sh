#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that `export` and `serve` load, into .runtime/ of the
# project (idempotent: does nothing when it is already there).
#
#   scripts/install-onnxruntime.sh          # CPU: onnxruntime==1.31.1 (about 29 MB unpacked)
#   scripts/install-onnxruntime.sh --cuda   # CUDA 13: onnxruntime-gpu==1.31.1 and its providers
#   scripts/install-onnxruntime.sh --dest DIR   # into DIR instead (the Docker images use this)
#
# The library comes from the PyPI wheel (the default download of the `ort` crate comes from a CDN
# that many networks, ours included, cannot reach). Needs python3 with pip.
set -euo pipefail

version=1.31.1
package=onnxruntime
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.runtime/onnxruntime"
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) package=onnxruntime-gpu ;;
    --dest)
      [ $# -ge 2 ] || { echo "usage: $0 [--cuda] [--dest DIR]" >&2; exit 2; }
      target=$2
      shift
      ;;
    *) echo "usage: $0 [--cuda] [--dest DIR]" >&2; exit 2 ;;
  esac
  shift
done
library="$target/libonnxruntime.so.$version"
if [ -f "$library" ] && { [ "$package" = onnxruntime ] || [ -f "$target/libonnxruntime_providers_cuda.so" ]; }; then
  exit 0
fi

command -v python3 >/dev/null || { echo "error: python3 is needed to install ONNX Runtime" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "error: python3 -m pip is needed to install ONNX Runtime" >&2; exit 1; }

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
echo "installing $package==$version into $target" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$package==$version"
wheel=$(ls "$wheels"/*.whl)
mkdir -p "$target"
# Only the shared libraries: the wheel's Python half is not needed (and unzip may be missing).
python3 - "$wheel" "$target" <<'PY'
import fnmatch, os, shutil, sys, zipfile

wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if fnmatch.fnmatch(name, "onnxruntime/capi/libonnxruntime*.so*"):
            with archive.open(name) as src, open(os.path.join(target, os.path.basename(name)), "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
[ -f "$library" ] || { echo "error: $wheel holds no libonnxruntime.so.$version" >&2; exit 1; }
echo "ONNX Runtime $version: $library" >&2
