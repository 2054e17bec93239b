#!/usr/bin/env python3
"""Turns the JSON lines of one scripts/gpu-bench.sh run into its Markdown report.

    report.py RESULTS.jsonl > REPORT.md

Every ratio compares two figures of the same run on the same machine: ours over PyTorch's for
the same network, batch, precision and input placement.
"""

import json
import sys


def load(path):
    records = []
    try:
        lines = open(path)
    except OSError as e:
        sys.exit(f"error: {path}: {e.strerror}")
    with lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}:{number}: not JSON ({e})")
    return records


def rate(value):
    return "–" if value is None else f"{value:,.0f}"


def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return "–"
    return f"{ours / theirs:.2f}×"


def pick(records, **match):
    for r in records:
        if all(r.get(k) == v for k, v in match.items()):
            return r.get("images_per_second")
    return None


def table(title, columns, rows, note=None):
    """A Markdown section: `## title`, an optional note, and a table of `columns` (name, and
    whether it is right-aligned) over `rows` (lists of cells)."""
    out = [f"## {title}", ""]
    if note:
        out += [note, ""]
    out.append("| " + " | ".join(name for name, _ in columns) + " |")
    out.append("|" + "|".join("---:" if right else "---" for _, right in columns) + "|")
    out += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return out + [""]


def machine_section(records):
    out = ["# GPU benchmark: burn and ONNX Runtime beside PyTorch", ""]
    for r in records:
        if r.get("suite") == "machine":
            for key in ("date", "commit", "gpu", "driver", "cpu", "pytorch", "onnxruntime",
                        "burn", "command"):
                if key in r:
                    out.append(f"- {key}: {r[key]}")
    out += ["", "All figures come from this one run; ratios are ours ÷ PyTorch's for the same "
            "network, batch, precision and input placement.", ""]
    return out


def parity_section(records):
    rows = [r for r in records if r.get("suite") == "parity"]
    tests = [r for r in records if r.get("suite") == "gpu_path"]
    if not rows and not tests:
        return []
    out = ["## Correctness: GPU loss curve against the CPU's", ""]
    for r in tests:
        verdict = "passed" if r["rc"] == 0 else f"FAILED (exit {r['rc']})"
        out += [f"GPU-path tests on `{r['device']}` (train-cli/tests/gpu_path.rs: every model's "
                f"gradients, training runs step by step): {verdict}; their comparison tables "
                f"are in `{r['log']}`.", ""]
    if rows:
        out += ["| run | steps | max abs. loss difference | max rel. difference | tolerance | verdict |",
                "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['steps']} | {r['max_abs']:.2e} | {r['max_rel']:.2e} "
                   f"| {r['tolerance']:.0e} | {r['verdict']} |")
    return out + [""]


def train_section(records):
    train = [r for r in records if r.get("suite") == "train"]
    keys = []
    for r in train:
        key = (r["arch"], r["image_size"], r["batch"], r["method"])
        if key not in keys:
            keys.append(key)
    if not keys:
        return []
    rows = []
    for arch, size, batch, method in keys:
        same = dict(suite="train", arch=arch, image_size=size, batch=batch, method=method)
        burn = pick(train, impl="burn", precision="f32", **same)
        torch32 = pick(train, impl="pytorch", precision="f32", channels_last=False, **same)
        burn16 = pick(train, impl="burn", precision="bf16", **same)
        torch16 = pick(train, impl="pytorch", precision="bf16", channels_last=True, **same)
        rows.append([arch, size, batch, method, rate(burn), rate(torch32), ratio(burn, torch32),
                     rate(burn16), rate(torch16), ratio(burn16, torch16)])
    columns = [("network", False), ("px", True), ("batch", True), ("method", False),
               ("burn f32", True), ("PyTorch f32", True), ("burn ÷ PyTorch f32", True),
               ("burn bf16", True), ("PyTorch bf16 channels-last", True),
               ("burn bf16 ÷ PyTorch bf16", True)]
    note = ("burn bf16 keeps every tensor in bf16 (speed only: it breaks the momentum update); "
            "PyTorch bf16 is autocast with f32 weights.")
    return table("Training throughput (images/s, full steps)", columns, rows, note)


def infer_section(records):
    infer = [r for r in records if r.get("suite") == "infer"]
    if not infer:
        return []
    rows = []
    for r in infer:
        torch32 = pick(infer, impl="pytorch", precision="f32", channels_last=False,
                       io=r["io"], batch=r["batch"])
        what = r.get("provider") or (r["precision"] + (" channels-last" if r.get("channels_last")
                                                        else ""))
        shown = "–" if r["impl"] == "pytorch" and r["precision"] == "f32" and not \
            r.get("channels_last") else ratio(r["images_per_second"], torch32)
        rows.append([r["impl"], what, r["io"], r["batch"], f"{r['latency_ms']:.2f}",
                     rate(r["images_per_second"]), shown])
    columns = [("runtime", False), ("provider / precision", False), ("io", False),
               ("batch", True), ("latency ms", True), ("images/s", True),
               ("÷ PyTorch f32, same io", True)]
    note = ("`io`: `host` = new host tensors in and out per call; `pinned` = page-locked host "
            "buffers (I/O binding; PyTorch: `pin_memory` + `non_blocking`); `device` = input "
            "and output stay on the GPU.")
    return table("Inference throughput (images/s)", columns, rows, note)


def decode_section(records):
    decode = [r for r in records if r.get("suite") == "decode"]
    if not decode:
        return []
    best_ort = max((r["images_per_second"] for r in records
                    if r.get("suite") == "infer" and r.get("impl") == "onnxruntime"
                    and r.get("io") != "device"), default=None)
    rows = [[f"decode + resize + normalise ({r['source']} → {r['image_size']} px)", r["threads"],
             rate(r["images_per_second"]), ratio(r["images_per_second"], best_ort)]
            for r in decode]
    columns = [("work", False), ("threads", True), ("images/s", True),
               ("÷ best ONNX Runtime rate with host I/O", True)]
    return table("Does the CPU side keep up?", columns, rows)


def serve_section(records):
    rows = [r for r in records if r.get("suite") == "serve"]
    if not rows:
        return []
    cells = [[r["device"], r["model"], r["clients"], f"`{r['serve_flags']}`", r["requests"],
              rate(r["images_per_second"]), f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"]
             for r in rows]
    columns = [("device", False), ("model", False), ("clients", True), ("serve flags", False),
               ("requests", True), ("images/s", True), ("p50 ms", True), ("p99 ms", True)]
    return table("serve end to end (HTTP, JPEG uploads)", columns, cells)


def failure_section(records):
    rows = [r for r in records if r.get("suite") == "failure"]
    if not rows:
        return []
    out = ["## Steps that failed or ran out of time", ""]
    for r in rows:
        tail = r.get("stderr_tail", "").strip().replace("\n", " ⏎ ")
        out.append(f"- **{r['label']}** (exit {r['rc']}): `{tail[-400:]}`")
    return out + [""]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS.jsonl > REPORT.md")
    records = load(sys.argv[1])
    lines = []
    for section in (machine_section, parity_section, train_section, infer_section,
                    decode_section, serve_section, failure_section):
        lines += section(records)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
