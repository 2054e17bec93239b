#!/usr/bin/env bash
# Starts the serve runtime that docker/install-runtime.sh laid out in PREFIX the way the image
# starts it (settings from EXEMPLAR_* variables, ONNX Runtime from ORT_DYLIB_PATH), checks it with
# the image's HEALTHCHECK command (`serve --health-check`, which reads the address from
# EXEMPLAR_ADDR), then stops it with SIGTERM as Docker and Kubernetes do and expects a clean exit.
#
#   docker/smoke-test.sh PREFIX MODELS_DIR
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 PREFIX MODELS_DIR" >&2
  exit 2
fi
[ -x "$1/bin/serve" ] || { echo "error: $1/bin/serve is missing: run docker/install-runtime.sh $1 SERVE_BINARY first" >&2; exit 1; }
[ -d "$2" ] || { echo "error: $2 is not a directory of exported models" >&2; exit 1; }
prefix=$(cd "$1" && pwd)
EXEMPLAR_MODELS=$(cd "$2" && pwd)
export EXEMPLAR_MODELS
export EXEMPLAR_ADDR=127.0.0.1:0
export EXEMPLAR_GRPC_ADDR=127.0.0.1:0   # on in the images too
export EXEMPLAR_DEVICE=${EXEMPLAR_DEVICE:-auto}
export ORT_DYLIB_PATH=$prefix/lib/onnxruntime/libonnxruntime.so.1.31.1
serve=$prefix/bin/serve

out=$(mktemp)
trap 'rm -f "$out"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
# From a neutral directory, so that nothing is found beside the project by accident.
(cd / && exec "$serve") >"$out" &
pid=$!
for _ in $(seq 300); do
  grep -q "listening on" "$out" && break
  kill -0 "$pid" 2>/dev/null || { echo "error: serve exited during start-up" >&2; exit 1; }
  sleep 0.1
done
addr=$(sed -n 's|^serve: listening on http://||p' "$out")
[ -n "$addr" ] || { echo "error: serve did not start within 30 s" >&2; exit 1; }

EXEMPLAR_ADDR=$addr "$serve" --health-check
echo "healthy: $addr"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || { echo "error: serve exited with $status after SIGTERM" >&2; exit 1; }
echo "stopped cleanly on SIGTERM"
