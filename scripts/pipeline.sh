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
# Release: the debug build trains at half the speed even with every crate optimised.
cargo build --release --quiet -p exemplar-train -p exemplar-export -p exemplar-serve --bins --examples
train=target/release/train
export_bin=target/release/export
serve=target/release/serve
started=$SECONDS

step() { printf '\n== %s\n' "$*" >&2; }

step "pretrain (Exemplar-v2, configs/cpu-quick.toml)"
"$train" pretrain --config configs/cpu-quick.toml --out "$out/pretrain"

# Fine-tuning budgets that fit the 10 minutes: 12–16 epochs of 2000 images each at the
# pretraining's 32 px, where a step costs a quarter of one at 64 px and each task reaches its
# target score (fewer, larger images reached none of them in the same time). Detection and
# landmarks take larger learning rates. results/train-throughput-cpu.md has the training speeds.
finetune() { # task epochs extra-flags...
  local task=$1 epochs=$2; shift 2
  step "fine-tune $task ($epochs epochs of 2000 images at 32 px)"
  "$train" finetune --task "$task" --init "$out/pretrain" --epochs "$epochs" --image-size 32 \
    --synthetic-train-size 2000 --synthetic-val-size 200 --log-every 100 --out "$out/$task" "$@"
}
finetune detection 16 --lr 0.04
finetune segmentation 16
finetune landmarks 12 --lr 0.1
finetune classification 12

step "export"
"$export_bin" --checkpoint "$out/pretrain" --out "$out/models/backbone"
for task in detection segmentation landmarks classification; do
  "$export_bin" --checkpoint "$out/$task" --out "$out/models/$task"
done

step "serve"
target/release/examples/samples "$out/samples" >/dev/null
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
mkdir -p "$out/answers"
request() { # path image name: the answer is printed (cut short) and kept in answers/name.json
  printf '%s\n  ' "$1" >&2
  curl --silent --show-error --fail-with-body --data-binary "@$2" "$url$1" > "$out/answers/$3.json"
  cut -c1-300 "$out/answers/$3.json"
  echo
}
request /v1/detect "$scene" detect
request /v1/segment "$scene" segment
request /v1/landmarks "$face" landmarks
request /v1/embed "$scene" embed
request "/v1/classify?top_k=3" "$scene" classify

step "what the served models do"
target/release/examples/annotate --scene "$scene" --detect "$out/answers/detect.json" \
  --segment "$out/answers/segment.json" --face "$face" \
  --landmarks "$out/answers/landmarks.json" --out "$out/result.png"
# Each fine-tuning's validation score, from the last line of its metrics log.
score() { # task metric
  grep '"eval":"after"' "$out/$1/metrics.jsonl" | tail -n 1 \
    | sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p"
}
printf '\n| task | validation metric (%%) | score | aim |\n|---|---|---:|---:|\n'
printf '| detection | VOC07 mAP50 | %.1f | ≥ 50 |\n' "$(score detection voc07_map50)"
printf '| segmentation | mIoU | %.1f | ≥ 50 |\n' "$(score segmentation miou)"
printf '| landmarks | NME (of the inter-ocular distance; lower is better) | %.1f | ≤ 10 |\n' "$(score landmarks nme_percent)"
printf '| classification | top-1 | %.1f | ≥ 80 |\n' "$(score classification top1)"
elapsed=$((SECONDS - started))
printf '\n%d min %d s from pretraining to this table; picture: %s; models, answers, metrics and logs in %s\n' \
  $((elapsed / 60)) $((elapsed % 60)) "$out/result.png" "$out" >&2
printf 'to try the models in a browser: %s --models %s, then open http://127.0.0.1:8080/\n' \
  "$serve" "$out/models" >&2
