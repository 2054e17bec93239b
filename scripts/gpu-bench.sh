#!/usr/bin/env bash
# The GPU benchmark: burn training and ONNX Runtime inference beside PyTorch, on one machine in
# one run, written up as ratios. docs/gpu-bench.md explains the figures and the procedure.
#
#   scripts/gpu-bench.sh prepare [--cpu]   # on the build machine: build everything the GPU
#                                          # machine needs into .gpu-bench/ (it is offline)
#   scripts/gpu-bench.sh stage             # on the GPU machine, once per call that carried parts
#   scripts/gpu-bench.sh run [--cpu] [--quick] [--out DIR] [--phase P]
#                                          # on the GPU machine: measure, write DIR/gpu-bench.md
#                                          # ($OUT by default there, results/ elsewhere)
#
# `--cpu` builds and runs the same sequence without CUDA (a rehearsal on any machine: every
# step, the report and the failure handling are exercised; the figures mean nothing).
# `--quick` shrinks every measurement to a few steps at small sizes. `--phase` runs one part
# (parity, train-burn, train-burn-bf16, train-pytorch, infer-onnxruntime, infer-pytorch, serve)
# and adds it to the
# results staged so far, so the parts can go in separate calls of at most 10 minutes each.
#
# Environment: EXEMPLAR_PYTHON (default python3) must import torch for the reference rows;
# EXEMPLAR_GPU_STAGE (default /tmp/exemplar-gpu) is where the GPU machine keeps the bundle.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/.gpu-bench"
stage=${EXEMPLAR_GPU_STAGE:-/tmp/exemplar-gpu}
python=${EXEMPLAR_PYTHON:-python3}
part_size=58m

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "error: $*" >&2
  exit 1
}

# --- prepare (build machine) ------------------------------------------------------------------

prepare() {
  local cpu=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --cpu) cpu=1 ;;
      *) usage ;;
    esac
    shift
  done
  command -v zstd >/dev/null || die "zstd is needed to pack the bundle (apt-get install zstd)"
  local features=(--features exemplar-train/cuda) ort_flag=(--cuda)
  if [ "$cpu" = 1 ]; then
    features=()
    ort_flag=()
  fi
  local packages=(-p exemplar-train -p exemplar-train-cli -p exemplar-export -p exemplar-serve -p exemplar-tests)
  rm -rf "$bundle/root" "$bundle/parts" "$bundle/tools"
  mkdir -p "$bundle/root/bin" "$bundle/parts" "$bundle/tools"

  echo "building the binaries (release${features:+, ${features[*]}})" >&2
  cargo build --release "${packages[@]}" "${features[@]}" --bins
  for bin in train export serve; do
    cp "$root/target/release/$bin" "$bundle/root/bin/"
  done
  # Symbols are a quarter of each binary, and every megabyte is carried by hand.
  local strip_bin=(true)
  if command -v strip >/dev/null; then
    strip_bin=(strip)
  fi
  echo "building the benchmarks and the GPU-path tests" >&2
  cargo bench --no-run --message-format=json-render-diagnostics "${packages[@]}" "${features[@]}" \
    --bench pretrain_throughput --bench inference --bench load >"$bundle/benches.json"
  cargo test --release --no-run --message-format=json-render-diagnostics "${packages[@]}" "${features[@]}" \
    --test gpu_path >>"$bundle/benches.json"
  "$python" - "$bundle/benches.json" "$bundle/root/bin" <<'PY'
import json, shutil, sys
wanted = {"pretrain_throughput", "inference", "load", "gpu_path"}
found = set()
for line in open(sys.argv[1]):
    message = json.loads(line)
    target = message.get("target", {})
    kinds = target.get("kind", [])
    if message.get("reason") == "compiler-artifact" and target.get("name") in wanted \
            and ("bench" in kinds or "test" in kinds) and message.get("executable"):
        shutil.copy(message["executable"], f"{sys.argv[2]}/{target['name']}")
        found.add(target["name"])
missing = wanted - found
if missing:
    sys.exit(f"error: cargo built no executable for {sorted(missing)}")
PY
  rm -f "$bundle/benches.json"
  "${strip_bin[@]}" "$bundle"/root/bin/*

  "$root/scripts/install-onnxruntime.sh" "${ort_flag[@]}" --dest "$bundle/root/onnxruntime"
  rm -f "$bundle"/root/onnxruntime/libonnxruntime_providers_tensorrt.so # not used
  echo "$([ "$cpu" = 1 ] && echo cpu || echo cuda) $(git -C "$root" rev-parse --short HEAD)" \
    >"$bundle/root/BUILD"

  echo "packing" >&2
  tar -C "$bundle/root" -cf - . | zstd -q -12 -T0 --long=27 | split -b "$part_size" -d -a 2 - "$bundle/parts/root.tar.zst."
  # zstd itself travels too (the GPU machine may not have it), with the libraries it links.
  cp "$(command -v zstd)" "$bundle/tools/"
  ldd "$(command -v zstd)" | awk '/=> \// { print $3 }' | grep -E 'lib(lz4|lzma|z|zstd)\.so' |
    while read -r lib; do cp "$lib" "$bundle/tools/"; done

  echo >&2
  echo "bundle ready: $(du -sh "$bundle/parts" | cut -f1) in $(ls "$bundle/parts" | wc -l) parts" >&2
  echo "carry one part per call (a call carries at most 64 MiB), then run (docs/gpu-bench.md):" >&2
  local first=1
  for part in "$bundle"/parts/*; do
    local carry=".gpu-bench/parts/$(basename "$part")"
    [ "$first" = 1 ] && carry="$carry .gpu-bench/tools"
    echo "  carry: $carry    command: bash scripts/gpu-bench.sh stage" >&2
    first=0
  done
  echo "  command: bash scripts/gpu-bench.sh run    (results come back in \$OUT)" >&2
}

# --- stage (GPU machine) ----------------------------------------------------------------------

stage_parts() {
  mkdir -p "$stage/parts" "$stage/tools"
  [ -d "$bundle/tools" ] && cp -a "$bundle/tools/." "$stage/tools/"
  [ -d "$bundle/parts" ] && cp -a "$bundle/parts/." "$stage/parts/"
  ls -l "$stage/parts" "$stage/tools"
}

# --- run (GPU machine) ------------------------------------------------------------------------

unpack() {
  # Written only once the whole bundle has unpacked: a cut-off unpack starts again.
  if [ -f "$stage/unpacked" ]; then
    return
  fi
  # A rehearsal on the build machine runs straight from the bundle.
  if [ ! -d "$stage/parts" ] && [ -d "$bundle/parts" ]; then
    stage_parts >/dev/null
  fi
  ls "$stage"/parts/root.tar.zst.* >/dev/null 2>&1 || die "no bundle parts in $stage/parts (run 'prepare', then 'stage' for each part)"
  local zstd=zstd
  if [ -x "$stage/tools/zstd" ]; then
    zstd="$stage/tools/zstd"
  fi
  rm -rf "$stage/root"
  mkdir -p "$stage/root"
  if ! cat "$stage"/parts/root.tar.zst.* | LD_LIBRARY_PATH="$stage/tools" "$zstd" -d -q --long=27 |
    tar -C "$stage/root" -xf - || [ ! -f "$stage/root/BUILD" ]; then
    rm -rf "$stage/root"
    die "the bundle in $stage/parts ($(ls "$stage/parts" | wc -l) parts) is incomplete or corrupt: stage every part of one 'prepare'"
  fi
  touch "$stage/unpacked"
}

# The CUDA 13 / cuDNN 9 libraries of the machine's PyTorch (its nvidia-* packages) serve ONNX
# Runtime's CUDA provider as well.
nvidia_library_path() {
  "$python" - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib")))
    dirs += sorted(glob.glob(os.path.join(base, "nvidia", "cu13", "lib")))
print(":".join(dict.fromkeys(dirs)))
PY
}

results=""
out=""

# publish: the results so far and their report into $out. After every step, so that a call that
# runs out of time still brings back everything measured before.
publish() {
  cp "$results" "$out/gpu-bench.jsonl"
  "$python" "$root/scripts/gpu-bench/report.py" "$results" >"$out/gpu-bench.md" || true
}

# step LABEL SECONDS COMMAND...: runs COMMAND with a time limit; its JSON lines go to the results,
# a failure becomes a "failure" record with the end of its error output.
step() {
  local label=$1 limit=$2
  shift 2
  echo "== $label" >&2
  local err
  err=$(mktemp)
  local rc=0
  timeout --kill-after=10 "$limit" "$@" 2>"$err" | grep '^{' >>"$results" || rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    [ "$rc" = 124 ] && echo "timed out after ${limit}s" >>"$err"
    "$python" -c 'import json,sys; print(json.dumps({"suite":"failure","label":sys.argv[1],"rc":int(sys.argv[2]),"stderr_tail":open(sys.argv[3],errors="replace").read()[-2000:]}))' \
      "$label" "$rc" "$err" >>"$results"
    tail -5 "$err" >&2
  fi
  rm -f "$err"
  publish
}

# parity LABEL CPU_RUN GPU_RUN TOLERANCE: compares the two runs' per-step losses.
parity() {
  "$python" - "$@" >>"$results" <<'PY'
import json, sys
label, cpu_run, gpu_run, tolerance = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def losses(run):
    out = {}
    for line in open(f"{run}/metrics.jsonl"):
        entry = json.loads(line)
        if "loss" in entry:
            out[entry["step"]] = entry["loss"]
    return out
try:
    cpu, gpu = losses(cpu_run), losses(gpu_run)
except OSError as e:
    print(json.dumps({"suite": "failure", "label": label, "rc": 1, "stderr_tail": str(e)}))
    sys.exit()
steps = sorted(set(cpu) & set(gpu))
diffs = [abs(cpu[s] - gpu[s]) for s in steps]
rels = [abs(cpu[s] - gpu[s]) / max(abs(cpu[s]), 1e-12) for s in steps]
max_rel = max(rels, default=float("nan"))
print(json.dumps({"suite": "parity", "label": label, "steps": len(steps),
                  "max_abs": max(diffs, default=float("nan")), "max_rel": max_rel,
                  "tolerance": tolerance,
                  "verdict": "same curve" if steps and max_rel <= tolerance else "DIFFERENT",
                  "cpu": [cpu[s] for s in steps], "gpu": [gpu[s] for s in steps]}))
PY
  publish
}

# gpu_path BIN DEVICE LOG: the GPU-path tests (train-cli/tests/gpu_path.rs), as CI runs them on a
# software Vulkan device: every model's gradients and short training runs on DEVICE against the
# CPU, step by step. Their printed comparison goes to LOG, their verdict to the results.
gpu_path() {
  local bin=$1 device=$2 log=$3 limit=300 rc=0
  echo "== GPU-path tests on $device" >&2
  EXEMPLAR_BIN_DIR="$bin" EXEMPLAR_GPU_DEVICE="$device" \
    timeout --kill-after=10 "$limit" "$bin/gpu_path" --ignored --nocapture --test-threads 1 >"$log" 2>&1 || rc=$?
  [ "$rc" = 124 ] && echo "timed out after ${limit}s" >>"$log"
  "$python" -c 'import json,sys; rc=int(sys.argv[2]); tail=open(sys.argv[3],errors="replace").read()[-2000:]
print(json.dumps({"suite":"gpu_path","device":sys.argv[1],"rc":rc,"log":sys.argv[3].rsplit("/",1)[-1]}))
if rc: print(json.dumps({"suite":"failure","label":"GPU-path tests","rc":rc,"stderr_tail":tail}))' \
    "$device" "$rc" "$log" >>"$results"
  publish
}

run() {
  local cpu=0 quick=0 phase=all
  out=${OUT:-$root/results}
  while [ $# -gt 0 ]; do
    case "$1" in
      --cpu) cpu=1 ;;
      --quick) quick=1 ;;
      --out)
        [ $# -ge 2 ] || usage
        out=$2
        shift
        ;;
      --phase)
        [ $# -ge 2 ] || usage
        phase=$2
        shift
        ;;
      *) usage ;;
    esac
    shift
  done
  case "$phase" in
    all | parity | train-burn | train-burn-bf16 | train-pytorch | infer-onnxruntime | infer-pytorch | serve) ;;
    *) die "unknown phase '$phase' (all, parity, train-burn, train-burn-bf16, train-pytorch, infer-onnxruntime, infer-pytorch or serve)" ;;
  esac
  unpack
  local bin="$stage/root/bin" work="$stage/work"
  # Phases run in separate calls share the staged work and results; `all` starts afresh.
  results="$stage/results.jsonl"
  if [ "$phase" = all ]; then
    rm -rf "$work" "$results"
  fi
  mkdir -p "$work" "$out"
  export ORT_DYLIB_PATH="$stage/root/onnxruntime/libonnxruntime.so.1.31.1"
  export LD_LIBRARY_PATH="$stage/root/onnxruntime:$(nvidia_library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local dev=cuda
  [ "$cpu" = 1 ] && dev=cpu
  local reference=("$python" "$root/scripts/gpu-bench/reference.py")

  # Sizes: the issue's (ResNet-18 batch 64, ResNet-50 batch 256 at 224 px; inference 1/32/256),
  # or a few small steps for --quick.
  local size=224 rn18_batch=64 rn50_batch=256 batches=1,32,256 steps=(--warmup 5 --steps 20)
  local min_images=(--min-images 2048) clients=64 requests=40
  if [ "$quick" = 1 ]; then
    size=64 rn18_batch=8 rn50_batch=4 batches=1,4 steps=(--warmup 1 --steps 2)
    min_images=(--min-images 8 --min-iters 2) clients=4 requests=4
  fi
  # Time limits per step, sized so that each phase fits one 10-minute call even when every step
  # of it runs out of time (burn's first CUDA steps compile and autotune their kernels).
  local long=150 short=60

  [ -s "$results" ] || "$python" - "$dev" "$(cat "$stage/root/BUILD")" >>"$results" <<PY
import datetime, json, platform, subprocess, sys
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""
record = {"suite": "machine", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "commit": sys.argv[2], "burn": "0.22.1", "onnxruntime": "1.31.1",
          "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() + f", {sh('nproc')} cores",
          "command": "scripts/gpu-bench.sh run" + (" --cpu" if sys.argv[1] == "cpu" else "") + (" --quick" if "$quick" == "1" else "")}
if sys.argv[1] == "cuda":
    record["gpu"] = sh("nvidia-smi --query-gpu=name,memory.total --format=csv,noheader")
    record["driver"] = sh("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
try:
    import torch
    record["pytorch"] = torch.__version__ + (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if torch.cuda.is_available() else "")
except Exception as e:
    record["pytorch"] = f"not importable: {e}"
print(json.dumps(record))
PY

  publish
  wants() { [ "$phase" = all ] || [ "$phase" = "$1" ]; }

  # 1. Correctness: the same tiny Exemplar-v2 run on the CPU and on the GPU, step by step.
  if wants parity; then
    rm -rf "$work/parity-reference" "$work/parity-measured"
  fi
  local tiny=(--method exemplar-v2 --arch resnet18 --width 0.25 --stem small --image-size 32
    --batch-size 16 --queue-size 256 --synthetic-train-size 512 --synthetic-val-size 32
    --epochs 1 --max-steps 15 --log-every 1 --knn-every 0 --checkpoint-every 1000 --seed 3)
  if wants parity; then
    step "pretrain (CPU reference for parity)" "$short" "$bin/train" pretrain "${tiny[@]}" --device cpu --out "$work/parity-reference"
    step "pretrain on $dev (parity)" "$long" "$bin/train" pretrain "${tiny[@]}" --device "$dev" --out "$work/parity-measured"
    parity "Exemplar-v2, ResNet-18/4, 32 px, batch 16, 15 steps" "$work/parity-reference" "$work/parity-measured" 1e-3
    gpu_path "$bin" "$dev" "$out/gpu-path.log"
  fi

  # 2. Training throughput: burn, then PyTorch f32 and bf16 channels-last, on the same configs.
  local configs=("resnet18 $rn18_batch supervised" "resnet50 $rn50_batch exemplar-v2"
    "resnet50 $rn50_batch moco-v2" "resnet50 $rn50_batch supervised")
  local c arch batch method
  for c in "${configs[@]}"; do
    read -r arch batch method <<<"$c"
    local same=(--arch "$arch" --batch "$batch" --image-size "$size" --method "$method" "${steps[@]}")
    if wants train-burn; then
      step "burn train $arch b$batch $method" "$long" "$bin/pretrain_throughput" --device "$dev" "${same[@]}"
    fi
    # Speed only: every tensor in bf16, which burn 0.22 can do but which breaks the momentum
    # update (docs/gpu-bench.md), so train does not offer it.
    if wants train-burn-bf16; then
      step "burn train $arch b$batch $method bf16" "$long" "$bin/pretrain_throughput" --device "$dev" "${same[@]}" --precision bf16
    fi
    if wants train-pytorch; then
      step "pytorch train $arch b$batch $method f32" "$short" "${reference[@]}" train --device "$dev" "${same[@]}"
      step "pytorch train $arch b$batch $method bf16" "$short" "${reference[@]}" train --device "$dev" "${same[@]}" --precision bf16 --channels-last
    fi
  done

  # 3. Inference: a ResNet-50 embedding model exported by our own tools (random weights).
  if wants infer-onnxruntime || wants serve; then
    if [ ! -f "$work/models/embedding/model.onnx" ]; then
      step "make a ResNet-50 run" "$short" "$bin/train" pretrain --method supervised --arch resnet50 --image-size "$size" \
        --batch-size 2 --max-steps 1 --synthetic-train-size 4 --synthetic-val-size 2 --knn-every 0 \
        --device cpu --out "$work/rn50"
      step "export it" "$short" "$bin/export" --checkpoint "$work/rn50" --out "$work/models/embedding"
    fi
  fi
  local io provider
  for io in host pinned device; do
    if wants infer-onnxruntime; then
      for provider in tuned nhwc; do
        step "onnxruntime $io $provider" "$short" "$bin/inference" --model "$work/models/embedding" --device "$dev" \
          --batches "$batches" --io "$io" --provider "$provider" "${min_images[@]}"
        [ "$dev" = cpu ] && break # the provider options are CUDA's
      done
    fi
    if wants infer-pytorch; then
      step "pytorch infer $io f32" "$short" "${reference[@]}" infer --device "$dev" --arch resnet50 --image-size "$size" \
        --batches "$batches" --io "$io" "${min_images[@]}"
    fi
  done
  if wants infer-pytorch; then
    step "pytorch infer device bf16" "$short" "${reference[@]}" infer --device "$dev" --arch resnet50 --image-size "$size" \
      --batches "$batches" --io device --precision bf16 --channels-last "${min_images[@]}"
  fi
  if wants infer-onnxruntime; then
    step "decode + pre-process" "$short" "$bin/inference" --decode "$(nproc)"
  fi

  # 4. serve end to end: concurrent HTTP clients uploading JPEGs.
  if wants serve; then
    step "serve $dev" "$long" "$bin/load" --models "$work/models" --model embedding --endpoint /v1/embed \
      --device "$dev" --clients "$clients" --requests "$requests" --serve "$bin/serve" -- \
      --max-batch 32 --max-delay-ms 2 --queue 4096 --concurrency 1024
  fi

  publish
  echo "wrote $out/gpu-bench.md and $out/gpu-bench.jsonl" >&2
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  stage) shift; stage_parts "$@" ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
