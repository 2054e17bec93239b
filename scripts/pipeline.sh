#!/usr/bin/env bash
# The whole pipeline on the built-in data, on the CPU: pretrain a backbone with Exemplar-v2,
# fine-tune the four task heads on it, export the five models to ONNX (each checked against
# ONNX Runtime), serve them, and send one request to every endpoint.
#
#   scripts/pipeline.sh [RUN_DIR]        # default runs/pipeline-<unix time>
#
# Besides the runs, models, answers and picture, RUN_DIR/report.md records the machine, the
# build and run times and the scores (results/pipeline.md is the committed one).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/pipeline-$(date +%s)}
if [ -e "$out" ]; then
  echo "error: $out exists; choose another directory" >&2
  exit 1
fi

scripts/install-onnxruntime.sh
build_started=$SECONDS
# Release: the debug build trains at half the speed even with every crate optimised. The test
# suite runs on this same build (`cargo test --workspace --release`): `--workspace` makes cargo
# resolve dependency features as the tests do (their browser client turns on a few features of
# crates that burn and the proc macros share; resolved without it, they would rebuild
# burn's whole CPU backend), while only the three binaries and the two examples this script runs
# are compiled.
cargo build --release --quiet --workspace --bins --example samples --example annotate
build_time=$((SECONDS - build_started))
train=target/release/train
export_bin=target/release/export
serve=target/release/serve
started=$SECONDS

step() { printf '\n== %s\n' "$*" >&2; }

step "pretrain (Exemplar-v2, configs/cpu-quick.toml)"
"$train" pretrain --config configs/cpu-quick.toml --out "$out/pretrain"

# Fine-tuning budgets: 12–32 epochs of 2000 images each at the pretraining's 32 px, where a step
# costs a quarter of one at 64 px (fewer, larger images reached no aim in the same time). Each
# task reaches its aim; detection's 32 epochs are what it takes to give the sample scene's object
# one box, under its own class, at a score of 0.6 or more (16 epochs: 61.5% mAP50 and a second box
# as "ellipse"; 24: 91.1% and still the second box; 32: 94.9% and one box). Detection and
# landmarks take larger learning rates. results/train-throughput-cpu.md has the training speeds.
finetune() { # task epochs extra-flags...
  local task=$1 epochs=$2; shift 2
  step "fine-tune $task ($epochs epochs of 2000 images at 32 px)"
  "$train" finetune --task "$task" --init "$out/pretrain" --epochs "$epochs" --image-size 32 \
    --synthetic-train-size 2000 --synthetic-val-size 200 --log-every 100 --out "$out/$task" "$@"
}
finetune detection 32 --lr 0.04
finetune segmentation 16
finetune landmarks 20 --lr 0.1
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
table=$(
  printf '| task | validation metric (%%) | score | aim |\n|---|---|---:|---:|\n'
  printf '| detection | VOC07 mAP50 | %.1f | ≥ 60 |\n' "$(score detection voc07_map50)"
  printf '| segmentation | mIoU | %.1f | ≥ 50 |\n' "$(score segmentation miou)"
  printf '| landmarks | NME (of the inter-ocular distance; lower is better) | %.1f | ≤ 10 |\n' "$(score landmarks nme_percent)"
  printf '| classification | top-1 | %.1f | ≥ 80 |\n' "$(score classification top1)"
)
printf '\n%s\n' "$table"
elapsed=$((SECONDS - started))
printf '\n%d min %d s from pretraining to this table; picture: %s; models, answers, metrics and logs in %s\n' \
  $((elapsed / 60)) $((elapsed % 60)) "$out/result.png" "$out" >&2
printf 'to try the models in a browser: %s --models %s, then open http://127.0.0.1:8080/\n' \
  "$serve" "$out/models" >&2

minutes() { printf '%d min %d s' $(($1 / 60)) $(($1 % 60)); }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$out/report.md" <<REPORT
# The main job: \`scripts/pipeline.sh\`

Machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB; commit $commit;
$(date -u +%Y-%m-%d).

- release build: $(minutes "$build_time") (nothing to do when it was already built);
- from pretraining to the table: $(minutes "$elapsed").

Validation scores of the four fine-tunings (200 validation images each):

$table

The picture: \`result.png\` in the run directory, the served detections and mask on the sample
scene and the landmarks on the sample face.
REPORT
