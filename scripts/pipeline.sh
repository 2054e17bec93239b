#!/usr/bin/env bash
# The whole pipeline on the built-in data, on the CPU: pretrain a backbone with Exemplar-v2,
# fine-tune the four task heads on it, export the five models to ONNX (each checked against
# ONNX Runtime), serve them, and send one request to every endpoint.
#
#   scripts/pipeline.sh [RUN_DIR]        # default runs/pipeline-<unix time>
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/pipeline-$(date +%s)}
if [ -e "$out" ]; then
  echo "error: $out exists; choose another directory" >&2
  exit 1
fi

scripts/install-onnxruntime.sh
cargo build --quiet -p exemplar-train -p exemplar-export -p exemplar-serve --bins --examples
train=target/debug/train
export_bin=target/debug/export
serve=target/debug/serve

step() { printf '\n== %s\n' "$*" >&2; }

step "pretrain (Exemplar-v2, configs/cpu-quick.toml)"
"$train" pretrain --config configs/cpu-quick.toml --out "$out/pretrain"

for task in detection segmentation landmarks classification; do
  step "fine-tune $task"
  "$train" finetune --task "$task" --init "$out/pretrain" --epochs 1 \
    --synthetic-train-size 1000 --synthetic-val-size 200 --log-every 10 --out "$out/$task"
done

step "export"
"$export_bin" --checkpoint "$out/pretrain" --out "$out/models/backbone"
for task in detection segmentation landmarks classification; do
  "$export_bin" --checkpoint "$out/$task" --out "$out/models/$task"
done

step "serve"
target/debug/examples/samples "$out/samples" >/dev/null
"$serve" --models "$out/models" --addr 127.0.0.1:0 > "$out/serve.out" 2> "$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$out/serve.out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^serve: listening on //p' "$out/serve.out")
[ -n "$url" ] || { echo "error: serve did not start:" >&2; cat "$out/serve.log" >&2; exit 1; }
scene="$out/samples/scene.png"
face="$out/samples/face.png"
request() {
  printf '%s\n  ' "$1" >&2
  curl --silent --show-error --fail-with-body --data-binary "@$2" "$url$1" | cut -c1-300
  echo
}
request /v1/detect "$scene"
request /v1/segment "$scene"
request /v1/landmarks "$face"
request /v1/embed "$scene"
request "/v1/classify?top_k=3" "$scene"
printf '\nmodels, metrics and logs in %s\n' "$out" >&2
