#!/usr/bin/env bash
# Training speed on this machine's CPU: burn (the project's training step) beside PyTorch, the
# same step on the same configurations, in one run. Writes the report of this machine's kind,
# results/train-throughput-cpu/KIND.md (KIND: maker, line and widest vector unit, for example
# amd-epyc-avx2), and the index of all kinds' reports, results/train-throughput-cpu.md.
# Each row is measured three ways: burn with exemplar-kernels (what `train` runs), the same
# binary with burn's own convolution and batch norm (`--kernels off`), and PyTorch.
#
#   scripts/cpu-bench.sh [--quick] [--repeat N] [--baseline BIN] [--out FILE]
#
#   --quick          one measured step per row, once (a smoke test; the figures mean little)
#   --repeat N       measure each row N times, the implementations taking turns, and report
#                    the medians with their range (default 3: a shared 2-core VM varies by
#                    ±10-20% from one minute to the next)
#   --baseline BIN   also measure another build of the bench binary (for example one built
#                    from an earlier commit) in the same run, as the "burn before" column
#   --out FILE       the report (default results/train-throughput-cpu/KIND.md; another path
#                    leaves the index alone); the raw measurements go beside it as FILE with
#                    .jsonl
#
# PyTorch (CPU) is installed from PyPI into .runtime/bench-venv on first use: a benchmark
# dependency only, never needed by the build or the tests. EXEMPLAR_PYTHON names another
# interpreter that already imports torch.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 1; }
arguments="$*"
quick=0
repeat=3
baseline=
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --repeat) [ $# -ge 2 ] || die "--repeat needs a count"; repeat=$2; shift ;;
    --baseline) [ $# -ge 2 ] || die "--baseline needs a path"; baseline=$2; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a path"; out=$2; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
index=
if [ -z "$out" ]; then
  out=results/train-throughput-cpu/$(python3 scripts/cpu-bench/report.py --kind).md
  index=results/train-throughput-cpu.md
fi
case "$repeat" in
  ''|*[!0-9]*|0) die "--repeat takes a positive whole number, not '$repeat'" ;;
esac
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  die "--baseline $baseline is not an executable file"
fi

# PyTorch, installed once into the project's runtime folder.
torch_version=2.15.0
python=${EXEMPLAR_PYTHON:-}
if [ -z "$python" ]; then
  venv=.runtime/bench-venv
  if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "installing torch $torch_version into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==$torch_version" || die "could not install torch from PyPI"
  fi
  python=$venv/bin/python
fi
"$python" -c 'import torch' 2>/dev/null || die "$python cannot import torch"

# The bench binary, built in release as users run training.
echo "building the training bench (release)" >&2
bench=$(cargo build --release --quiet -p exemplar-train --bench pretrain_throughput \
          --message-format=json-render-diagnostics \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pretrain_throughput" and m.get("executable"):
        print(m["executable"])' | tail -n 1)
[ -x "$bench" ] || die "the bench binary was not built"

# network, width, stem, image size, batch, method, queue, measured steps: the five rows of the
# issue that asked for this benchmark, then what scripts/pipeline.sh (pretraining, then a
# supervised step shaped like its fine-tuning) and scripts/study.sh train.
rows=(
  "resnet18 1.0 imagenet 64 32 exemplar-v2 4096 6 issue"
  "resnet18 1.0 imagenet 64 32 supervised 4096 6 issue"
  "resnet18 1.0 imagenet 32 64 exemplar-v2 4096 6 issue"
  "resnet50 1.0 imagenet 64 8 exemplar-v2 4096 6 issue"
  "resnet18 1.0 imagenet 224 16 exemplar-v2 4096 3 issue"
  "resnet18 0.25 small 32 64 exemplar-v2 1024 10 pipeline-pretrain"
  "resnet18 0.25 small 32 32 supervised 1024 10 pipeline-finetune"
  "resnet18 0.125 small 16 128 exemplar-v2 4096 10 study"
)
raw=${out%.md}.jsonl
mkdir -p "$(dirname "$out")"
: > "$raw"
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
measure() { # label implementation repeat command...: one JSON line into $raw, or a failure record
  local label=$1 impl=$2 round=$3; shift 3
  local line
  if line=$("$@" 2>"$errors" | tail -n 1) && [ -n "$line" ]; then
    printf '%s\n' "$line" | python3 -c 'import json, sys
r = json.loads(sys.stdin.read())
r["label"], r["impl"], r["repeat"] = sys.argv[1], sys.argv[2], int(sys.argv[3])
print(json.dumps(r))' "$label" "$impl" "$round" >> "$raw"
  else
    echo "  $impl failed: $(tail -n 3 "$errors")" >&2
    python3 -c 'import json, sys; print(json.dumps({"label": sys.argv[1], "impl": sys.argv[2], "repeat": int(sys.argv[3]), "failed": True, "error": sys.argv[4]}))' \
      "$label" "$impl" "$round" "$(tail -n 3 "$errors")" >> "$raw"
  fi
}
[ "$quick" = 1 ] && repeat=1
for row in "${rows[@]}"; do
  read -r arch width stem size batch method queue steps label <<< "$row"
  [ "$quick" = 1 ] && steps=1
  same=(--arch "$arch" --width "$width" --stem "$stem" --image-size "$size" --batch "$batch"
        --method "$method" --queue "$queue" --warmup 1 --steps "$steps")
  echo "$label: $arch x$width $stem ${size}px b$batch $method" >&2
  for round in $(seq "$repeat"); do
    measure "$label" burn "$round" "$bench" --device cpu "${same[@]}"
    measure "$label" burn-ops "$round" "$bench" --device cpu "${same[@]}" --kernels off
    if [ -n "$baseline" ]; then
      measure "$label" burn-before "$round" "$baseline" --device cpu "${same[@]}"
    fi
    measure "$label" pytorch "$round" "$python" scripts/gpu-bench/reference.py train --device cpu "${same[@]}"
  done
done
report=$(python3 scripts/cpu-bench/report.py "$raw" --command "scripts/cpu-bench.sh${arguments:+ $arguments}" \
           ${index:+--index "$index"})
printf '%s\n' "$report" > "$out"
echo "wrote $out${index:+ and $index}" >&2
