#!/usr/bin/env bash
# Serving speed on this machine's CPU: `serve` (release) beside the Python server a user would
# write (FastAPI + Pillow + onnxruntime, serve/benches/python_anchor/), both driven by wrk at 1,
# 16 and 64 connections with real JPEG photos (500×375 and 1280×960), on three models: the
# pipeline's 64 px classifier shape, a 224 px ResNet-50 classifier and a 320 px detector.
# Writes results/serve-vs-python-cpu.md (and the raw rows beside it as .jsonl).
#
#   scripts/serve-bench.sh [--quick] [--duration S] [--only MODEL...] [--out FILE]
#
#   --quick        2-second runs, one photo, connections 1 and 16, a short memory run (a smoke
#                  test of the script; the figures mean little)
#   --duration S   seconds of load per row (default 10)
#   --only M...    only these models (classifier-64, resnet50-224, detector-320)
#   --out FILE     the report (default results/serve-vs-python-cpu.md)
#
# Benchmark dependencies, none of them needed by the build or the tests, are installed on first
# use: wrk (Debian's package, through apt-get), the Python server's packages into
# .runtime/serve-anchor (serve/benches/python_anchor/requirements.txt), and the photo, taken from
# the scikit-learn wheel on PyPI into .runtime/serve-bench/. The models are fine-tuned for a step
# from random weights and exported: their weights do not matter for speed.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 1; }
invocation="$*"
quick=0
duration=10
only=()
out=results/serve-vs-python-cpu.md
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --duration) [ $# -ge 2 ] || die "--duration needs seconds"; duration=$2; shift ;;
    --only)
      shift
      while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do only+=("$1"); shift; done
      continue
      ;;
    --out) [ $# -ge 2 ] || die "--out needs a path"; out=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
case "$duration" in
  ''|*[!0-9]*|0) die "--duration takes a positive whole number of seconds, not '$duration'" ;;
esac
for m in "${only[@]}"; do
  case "$m" in classifier-64|resnet50-224|detector-320) ;; *) die "unknown model '$m'" ;; esac
done

bench=.runtime/serve-bench
mkdir -p "$bench"

# The load generator.
if ! command -v wrk >/dev/null; then
  command -v apt-get >/dev/null || die "wrk is needed (https://github.com/wg/wrk) and apt-get is not here"
  echo "installing wrk (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q wrk >&2; else sudo apt-get install -y -q wrk >&2; fi
fi

# The Python server's packages.
venv=.runtime/serve-anchor
requirements=serve/benches/python_anchor/requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  echo "installing the Python server's packages into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$requirements" || die "could not install $requirements from PyPI"
  cp "$requirements" "$venv/requirements.txt"
fi

# The photos: scikit-learn's china.jpg (a real 640×427 photograph), cropped to 4:3 and resized.
photos=$bench/photos
if [ ! -f "$photos/photo-1280x960.jpg" ]; then
  echo "making the photos in $photos from the scikit-learn wheel (once)" >&2
  mkdir -p "$photos" "$bench/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$bench/wheel" scikit-learn==1.9.1 \
    || die "could not download the scikit-learn wheel from PyPI"
  "$venv/bin/python" - "$bench/wheel" "$photos" <<'PY'
import sys, zipfile
from io import BytesIO
from pathlib import Path
from PIL import Image
wheel = next(Path(sys.argv[1]).glob("scikit_learn-*.whl"))
with zipfile.ZipFile(wheel) as z:
    photo = Image.open(BytesIO(z.read("sklearn/datasets/images/china.jpg"))).convert("RGB")
w, h = photo.size
crop = photo.crop(((w - h * 4 // 3) // 2, 0, (w - h * 4 // 3) // 2 + h * 4 // 3, h))
for size in [(500, 375), (1280, 960)]:
    crop.resize(size, Image.LANCZOS).save(Path(sys.argv[2]) / f"photo-{size[0]}x{size[1]}.jpg", quality=90)
PY
fi

# The binaries, in release as users run them.
scripts/install-onnxruntime.sh
echo "building train, export and serve (release)" >&2
cargo build --release --quiet -p exemplar-train-cli -p exemplar-export -p exemplar-serve --bins

# The models.
models=$bench/models
make_model() { # name, then train finetune's arguments
  local name=$1
  shift
  [ -f "$models/$name/model.onnx" ] && return
  echo "fine-tuning and exporting $name" >&2
  rm -rf "$bench/runs/$name"
  target/release/train finetune "$@" --epochs 1 --out "$bench/runs/$name" > "$bench/runs-$name.log" 2>&1 \
    || die "fine-tuning $name failed (see $bench/runs-$name.log)"
  target/release/export --checkpoint "$bench/runs/$name" --out "$models/$name" >> "$bench/runs-$name.log" 2>&1 \
    || die "exporting $name failed (see $bench/runs-$name.log)"
}
make_model classifier-64 --task classification --synthetic-train-size 64 --synthetic-val-size 16
make_model resnet50-224 --task classification --arch resnet50 --width 1 --stem imagenet --image-size 224 \
  --batch-size 4 --synthetic-train-size 4 --synthetic-val-size 4
make_model detector-320 --task detection --arch resnet18 --width 1 --stem imagenet --image-size 320 \
  --batch-size 4 --synthetic-train-size 4 --synthetic-val-size 4

args=(--serve target/release/serve --uvicorn "$venv/bin/uvicorn" --models "$models" --out "$out"
      --logs "$bench/logs" --duration "$duration")
if [ "$quick" = 1 ]; then
  args+=(--duration 2 --connections 1 16 --memory-requests 500 --photos "$photos/photo-500x375.jpg")
else
  args+=(--photos "$photos/photo-500x375.jpg" "$photos/photo-1280x960.jpg")
fi
[ ${#only[@]} -gt 0 ] && args+=(--only "${only[@]}")
python3 scripts/serve-bench/run.py "${args[@]}"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
python3 scripts/serve-bench/report.py "${out%.md}.jsonl" \
  --machine "$cpu, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB" \
  --command "scripts/serve-bench.sh${invocation:+ $invocation}" > "$out"
echo "wrote $out" >&2
