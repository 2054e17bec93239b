#!/usr/bin/env python3
"""Turns the JSON lines scripts/cpu-bench.sh collected into one machine kind's report
(results/train-throughput-cpu/KIND.md): one row per configuration with burn's and PyTorch's
images per second (the median of the repeats, with their range), their ratio, the paired 95%
interval of the rounds' ratios (each round measures both sides back to back) with whether it lies
above or below 1×, and the loss each reported after the same number of steps. With --index it also rewrites the index of every
machine kind's report (results/train-throughput-cpu.md), followed by the record of what each
optimisation gave (candidates.md beside this script).

    report.py results/train-throughput-cpu/KIND.jsonl --command "scripts/cpu-bench.sh" \
        --index results/train-throughput-cpu.md > results/train-throughput-cpu/KIND.md
    report.py --kind      # prints this machine's kind, e.g. amd-epyc-avx2
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict


# The instruction-set flags that decide which kernels gemm and oneDNN pick.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx_vnni", "amx_tile", "amx_bf16")


def cpuinfo():
    """The first model name and flags /proc/cpuinfo lists."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def kind():
    """The machine kind a report is filed under: maker, line and widest vector unit."""
    model, flags = cpuinfo()
    lower = model.lower()
    line = ("amd-epyc" if "epyc" in lower else "intel-xeon" if "xeon" in lower
            else "amd" if "amd" in lower else "intel" if "intel" in lower else "cpu")
    vector = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"
    return f"{line}-{vector}"


def machine():
    model, flags = cpuinfo()
    vector = " ".join(f for f in VECTOR_FLAGS if f in flags) or "none of " + " ".join(VECTOR_FLAGS)
    return (f"{model}, {os.cpu_count()} cores, {platform.machine()}; flags: {vector}; "
            f"kernel: Linux {platform.release()}")


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median(runs):
    return statistics.median(r["images_per_second"] for r in runs)


def spread(runs):
    """The median images per second, and the range when there is more than one run."""
    values = [r["images_per_second"] for r in runs]
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


# Two-sided 95% quantiles of Student's t, by degrees of freedom (1-30).
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def paired_interval(rounds):
    """The geometric mean of the rounds' ratios and its 95% interval (t on the log ratios):
    each round measures both sides minutes apart, so the machine's drift cancels within a
    pair. None with fewer than two rounds."""
    if len(rounds) < 2:
        return None
    logs = [math.log(r) for r in rounds]
    mean = statistics.mean(logs)
    half = T95[min(len(logs) - 1, len(T95)) - 1] * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def verdict(interval):
    if interval is None:
        return "—"
    _, low, high = interval
    return "above 1×" if low > 1 else "below 1×" if high < 1 else "not resolved"


def paired_ratios(burn, torch):
    """burn / PyTorch for each round that measured both (the runs closest in time)."""
    torch_by_round = {r.get("repeat", 1): r for r in torch}
    return [b["images_per_second"] / torch_by_round[b.get("repeat", 1)]["images_per_second"]
            for b in burn if b.get("repeat", 1) in torch_by_round]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", nargs="?", help="the JSON lines file")
    parser.add_argument("--command", default="scripts/cpu-bench.sh")
    parser.add_argument("--index", help="rewrite this index of the reports beside the new one")
    parser.add_argument("--kind", action="store_true", help="print this machine's kind and exit")
    args = parser.parse_args()
    if args.kind:
        print(kind())
        return
    if not args.raw:
        parser.error("the JSON lines file is required")
    try:
        with open(args.raw) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"error: cannot read {args.raw}: {e.strerror}")
    except json.JSONDecodeError as e:
        sys.exit(f"error: {args.raw} is not JSON lines: {e}")

    # Each configuration's records, per implementation, in the order they were measured.
    rows = OrderedDict()
    failures = []
    versions = {}
    required = ("label", "impl", "arch", "image_size", "batch", "method", "images_per_second")
    for number, r in enumerate(records, 1):
        if not isinstance(r, dict):
            sys.exit(f"error: {args.raw} line {number}: not a measurement record")
        if r.get("failed"):
            failures.append(r)
            continue
        missing = [k for k in required if k not in r]
        if missing:
            sys.exit(f"error: {args.raw} line {number}: no {', '.join(missing)} in the record")
        key = (r["label"], r["arch"], r.get("width", 1.0), r.get("stem", "imagenet"),
               r["image_size"], r["batch"], r["method"])
        rows.setdefault(key, {}).setdefault(r["impl"], []).append(r)
        versions[r["impl"]] = r.get("version", "?")

    has_before = any("burn-before" in row for row in rows.values())
    has_ops = any("burn-ops" in row for row in rows.values())
    out = [f"# Training speed on the CPU ({kind()}): burn beside PyTorch", ""]
    out.append(f"- machine: {machine()}")
    out.append(f"- commit: {commit()}; command: `{args.command}`")
    out.append("- burn: " + versions.get("burn", "?") + " `flex` with exemplar-kernels' "
               "convolution and batch norm (what `train` runs)"
               + ("; burn's own ops: the same binary with `--kernels off`" if has_ops else "")
               + ("; burn-before: the `--baseline` binary" if has_before else "")
               + f"; PyTorch: {versions.get('pytorch', '?')} (CPU, its default threads)")
    out.append("- the same training step on both sides (scripts/gpu-bench/reference.py mirrors "
               "train/src/pretrain/learner.rs): query and key encoders, MLP head, labelled key queue, "
               "InfoNCE at τ = 0.2 with same-class keys masked (exemplar-v2), or cross-entropy "
               "(supervised); SGD momentum 0.9, weight decay 1e-4; one warm-up step, then the "
               "measured ones; two batches made beforehand and cycled")
    out.append("- loss: each side's loss after the last measured step, from its own random "
               "initialisation and random batches (PyTorch draws Gaussian noise, burn "
               "synthetic scenes), so the two agree in scale, not to the digit")
    repeats = max((len(runs) for impls in rows.values() for runs in impls.values()), default=0)
    out.append(f"- each figure: the median images per second of {repeats} measurement(s), the "
               "implementations taking turns, with the lowest and highest in brackets; "
               "burn / PyTorch is the ratio of the medians, with the lowest and highest ratio "
               "of one round's two measurements; paired: the geometric mean of the rounds' "
               "ratios with its 95% interval (Student's t on the log ratios), and whether that "
               "interval lies above or below 1×")
    out.append("")
    header = "| row | network | px | batch | method | steps | burn img/s |"
    rule = "|---|---|---:|---:|---|---:|---:|"
    if has_ops:
        header += " burn's own ops img/s | kernels' speed-up |"
        rule += "---:|---:|"
    if has_before:
        header += " burn-before img/s | speed-up |"
        rule += "---:|---:|"
    header += " PyTorch img/s | burn / PyTorch | paired [95%] | verdict | burn loss | PyTorch loss |"
    rule += "---:|---:|---:|---|---:|---:|"
    out += [header, rule]
    ratios = []
    verdicts = []
    for (label, arch, width, stem, size, batch, method), impls in rows.items():
        burn, torch = impls.get("burn"), impls.get("pytorch")
        network = f"{arch} ×{width:g} {stem}"
        steps = ((burn or torch or [{}])[0]).get("steps", "?")
        cells = [label, network, str(size), str(batch), method, str(steps)]
        cells.append(spread(burn) if burn else "failed")
        if has_ops:
            ops = impls.get("burn-ops")
            cells.append(spread(ops) if ops else "—")
            cells.append(f"{median(burn) / median(ops):.2f}×" if burn and ops else "—")
        if has_before:
            before = impls.get("burn-before")
            cells.append(spread(before) if before else "—")
            cells.append(f"{median(burn) / median(before):.2f}×" if burn and before else "—")
        cells.append(spread(torch) if torch else "failed")
        if burn and torch:
            ratio = median(burn) / median(torch)
            ratios.append((f"{label}: {arch} ×{width:g}, {size} px, {method}", ratio))
            rounds = paired_ratios(burn, torch)
            bracket = f" ({min(rounds):.2f}–{max(rounds):.2f})" if len(rounds) > 1 else ""
            cells.append(f"**{ratio:.2f}×**{bracket}")
            interval = paired_interval(rounds)
            verdicts.append(verdict(interval))
            cells.append(f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"
                         if interval else "—")
            cells.append(verdict(interval))
        else:
            cells += ["—", "—", "—"]
        cells.append(f"{burn[0]['last_loss']:.3f}" if burn else "—")
        cells.append(f"{torch[0]['last_loss']:.3f}" if torch else "—")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if ratios:
        low = min(ratios, key=lambda r: r[1])
        out.append(f"Lowest ratio of the medians: {low[1]:.2f}× ({low[0]}); highest: "
                   f"{max(r for _, r in ratios):.2f}×.")
        counts = [f"{verdicts.count(v)} {v}" for v in ("above 1×", "below 1×", "not resolved")]
        out.append(f"Paired intervals: {', '.join(counts)} (of {len(verdicts)} rows).")
    if failures:
        out += ["", "## Failures", ""]
        for f in failures:
            out.append(f"- {f['label']} ({f['impl']}): {f.get('error', '').strip()}")
    print("\n".join(out))
    if args.index:
        write_index(args.index, os.path.splitext(args.raw)[0] + ".md", "\n".join(out))


def write_index(index, report_path, report):
    """One line per machine kind's report in the index's folder, then candidates.md."""
    folder = os.path.join(os.path.dirname(index) or ".",
                          os.path.splitext(os.path.basename(index))[0])
    reports = {os.path.abspath(report_path): report}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.abspath(os.path.join(folder, name))
        if name.endswith(".md") and path not in reports:
            with open(path) as f:
                reports[path] = f.read()
    out = ["# Training speed on the CPU: burn beside PyTorch", "",
           "`scripts/cpu-bench.sh` measures the project's training step (burn with "
           "exemplar-kernels) and PyTorch's on the same configurations, taking turns, and files "
           "the result under the machine's kind: one report per kind, each from one run of the "
           "script.", "",
           "| machine kind | machine | commit | burn / PyTorch, lowest and highest row | "
           "rows whose paired 95% interval lies above or below 1× |",
           "|---|---|---|---|---|"]
    for path in sorted(reports):
        lines = reports[path].splitlines()
        field = lambda prefix: next((l[len(prefix):] for l in lines if l.startswith(prefix)), "?")
        commit = field("- commit: ").split(";")[0]
        ratios = field("Lowest ratio of the medians: ").replace("; highest: ", " to ")
        paired = field("Paired intervals: ")
        paired = "— (not computed then)" if paired == "?" else paired
        name = os.path.basename(path)
        link = os.path.relpath(path, os.path.dirname(os.path.abspath(index)))
        out.append(f"| [{os.path.splitext(name)[0]}]({link}) | {field('- machine: ')} | "
                   f"{commit} | {ratios} | {paired} |")
    candidates = os.path.join(os.path.dirname(os.path.abspath(__file__)), "candidates.md")
    if os.path.exists(candidates):
        with open(candidates) as f:
            out += ["", f.read().rstrip()]
    with open(index, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
