#!/usr/bin/env python3
"""Turns the JSON lines scripts/cpu-bench.sh collected into results/train-throughput-cpu.md:
one row per configuration with burn's and PyTorch's images per second (the median of the
repeats, with their range), their ratio, and the loss each reported after the same number of
steps.

    report.py results/train-throughput-cpu.jsonl --command "scripts/cpu-bench.sh" > report.md
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict


# The instruction-set flags that decide which kernels gemm and oneDNN pick.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx_vnni", "amx_tile", "amx_bf16")


def machine():
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


def paired_ratios(burn, torch):
    """burn / PyTorch for each round that measured both (the runs closest in time)."""
    torch_by_round = {r.get("repeat", 1): r for r in torch}
    return [b["images_per_second"] / torch_by_round[b.get("repeat", 1)]["images_per_second"]
            for b in burn if b.get("repeat", 1) in torch_by_round]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", help="the JSON lines file")
    parser.add_argument("--command", default="scripts/cpu-bench.sh")
    args = parser.parse_args()
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
    for r in records:
        if r.get("failed"):
            failures.append(r)
            continue
        key = (r["label"], r["arch"], r.get("width", 1.0), r.get("stem", "imagenet"),
               r["image_size"], r["batch"], r["method"])
        rows.setdefault(key, {}).setdefault(r["impl"], []).append(r)
        versions[r["impl"]] = r.get("version", "?")

    has_before = any("burn-before" in row for row in rows.values())
    has_ops = any("burn-ops" in row for row in rows.values())
    out = ["# Training speed on the CPU: burn beside PyTorch", ""]
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
               "of one round's two measurements")
    out.append("")
    header = "| row | network | px | batch | method | steps | burn img/s |"
    rule = "|---|---|---:|---:|---|---:|---:|"
    if has_ops:
        header += " burn's own ops img/s | kernels' speed-up |"
        rule += "---:|---:|"
    if has_before:
        header += " burn-before img/s | speed-up |"
        rule += "---:|---:|"
    header += " PyTorch img/s | burn / PyTorch | burn loss | PyTorch loss |"
    rule += "---:|---:|---:|---:|"
    out += [header, rule]
    ratios = []
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
            ratios.append((label, ratio))
            rounds = paired_ratios(burn, torch)
            bracket = f" ({min(rounds):.2f}–{max(rounds):.2f})" if len(rounds) > 1 else ""
            cells.append(f"**{ratio:.2f}×**{bracket}")
        else:
            cells.append("—")
        cells.append(f"{burn[0]['last_loss']:.3f}" if burn else "—")
        cells.append(f"{torch[0]['last_loss']:.3f}" if torch else "—")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if ratios:
        low = min(ratios, key=lambda r: r[1])
        out.append(f"Lowest ratio of the medians: {low[1]:.2f}× ({low[0]}); highest: "
                   f"{max(r for _, r in ratios):.2f}×.")
    if failures:
        out += ["", "## Failures", ""]
        for f in failures:
            out.append(f"- {f['label']} ({f['impl']}): {f.get('error', '').strip()}")
    # The record of what each optimisation tried gave, kept beside this script by hand.
    candidates = os.path.join(os.path.dirname(os.path.abspath(__file__)), "candidates.md")
    if os.path.exists(candidates):
        with open(candidates) as f:
            out += ["", f.read().rstrip()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
