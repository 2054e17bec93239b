#!/usr/bin/env bash
# The serve image's runtime, laid out under PREFIX exactly as the container has it:
#
#   PREFIX/bin/serve                                       the binary
#   PREFIX/lib/onnxruntime/libonnxruntime.so.1.31.1        ONNX Runtime (+ CUDA providers with --cuda)
#
#   docker/install-runtime.sh PREFIX SERVE_BINARY [--cuda]
#
# Dockerfile.serve runs this in its runtime-files stage; CI runs it outside Docker, followed by
# docker/smoke-test.sh, so the container's contents are exercised where no Docker engine is.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ] || { [ $# -eq 3 ] && [ "$3" != --cuda ]; }; then
  echo "usage: $0 PREFIX SERVE_BINARY [--cuda]" >&2
  exit 2
fi
prefix=$1
binary=$2
cuda=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$binary" ] || { echo "error: $binary is not an executable" >&2; exit 1; }

install -d "$prefix/bin" "$prefix/lib/onnxruntime"
install -m 0755 "$binary" "$prefix/bin/serve"
# shellcheck disable=SC2086 # $cuda is empty or one flag
"$here/../scripts/install-onnxruntime.sh" $cuda --dest "$prefix/lib/onnxruntime"
if [ -n "$cuda" ] && [ ! -f "$prefix/lib/onnxruntime/libonnxruntime_providers_cuda.so" ]; then
  echo "error: the CUDA provider library is missing from $prefix/lib/onnxruntime" >&2
  exit 1
fi
echo "runtime installed in $prefix" >&2
