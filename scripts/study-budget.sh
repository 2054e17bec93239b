#!/usr/bin/env bash
# How long must pretraining be for MoCo-v2 to beat an untrained network? Runs the settings
# sweep's length points only (the frozen settings at EPOCHS, half and double that, and the
# untrained floor), SEEDS seeds each, and prints each length's held-out linear top-1 minus the
# untrained network's, paired by seed, with a Student-t 95% interval. The probe is fitted and
# scored on training images pretraining never saw (`--study sweep`), never on the validation
# split the study's report scores on. Runs are reused when rerun.
#
#   scripts/study-budget.sh [EPOCHS] [SEEDS]      # default 8 and 5; writes the table to stdout
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-8}
seeds=${2:-5}
case "$epochs$seeds" in *[!0-9]*|'') echo "error: EPOCHS and SEEDS are whole numbers" >&2; exit 1 ;; esac
data=$(scripts/fetch-fashion-mnist.sh)
cargo build --release --quiet -p exemplar-train-cli
settings=runs/study-budget/settings-$epochs.toml
mkdir -p runs/study-budget
sed "s/^epochs = .*/epochs = $epochs/" configs/study.toml > "$settings"
run() { target/release/train experiment --study sweep --seeds "$seeds" --data "idx:$data" \
  --settings "$settings" --work runs/study-budget/work --out runs/study-budget/report "$@"; }
# The plan's lines: index, stage, name. Only the length points and the floor are run.
run --plan 2>/dev/null | awk -F'\t' '/sweep: (frozen settings|epochs = [0-9]+|untrained) seed/ {print $1}' |
  while read -r index; do
    run --only "$index" 2>&1 | grep -E '^\[' >&2
  done
python3 - runs/study-budget/work/sweep <<'PY'
import glob, json, math, os, re, statistics, sys
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]
root = sys.argv[1]
rows = {}
for path in glob.glob(os.path.join(root, "untrained", "seed*", "study-result.json")) + \
        glob.glob(os.path.join(root, "around-*", "point*", "seed*", "study-result.json")):
    r = json.load(open(path))
    config = r["config"]
    if "untrained" in path:
        key = 0
    else:
        # Only the length points: the frozen settings and "epochs = N" differ from the
        # configuration file in their epochs alone.
        key = int(re.search(r"^epochs = (\d+)", config, re.M).group(1))
    rows.setdefault(key, {})[r["seed"]] = (r["linear_top1"] * 100, r["seconds"] / 60)
floor = rows.get(0, {})
print("| pretraining | seeds | held-out linear top-1 (%) | − untrained, paired by seed [95% t interval] | per seed | minutes per run |")
print("|---|---:|---:|---|---|---:|")
for key in sorted(rows):
    runs = rows[key]
    acc = [runs[s][0] for s in sorted(runs)]
    minutes = statistics.mean(runs[s][1] for s in runs)
    cell = f"{statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f}" if len(acc) > 1 else f"{acc[0]:.2f}"
    if key == 0:
        print(f"| untrained network | {len(acc)} | {cell} | — | — | {minutes:.2f} |")
        continue
    d = [runs[s][0] - floor[s][0] for s in sorted(runs) if s in floor]
    mean = statistics.mean(d)
    if len(d) > 1:
        half = T975[len(d) - 2] * statistics.stdev(d) / math.sqrt(len(d))
        side = "**above 0**" if mean - half > 0 else ("below 0" if mean + half < 0 else "contains 0")
        interval = f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}], {side}"
    else:
        interval = f"{mean:+.2f} [no interval]"
    per_seed = ", ".join(f"{x:+.2f}" for x in d)
    print(f"| MoCo-v2, {key} epochs | {len(d)} | {cell} | {interval} | {per_seed} | {minutes:.2f} |")
PY
