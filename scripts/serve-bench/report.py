"""Writes results/serve-vs-python-cpu.md from the measurements run.py recorded (.jsonl).

    python3 scripts/serve-bench/report.py results/serve-vs-python-cpu.jsonl --machine "..." \
        --command "scripts/serve-bench.sh" > results/serve-vs-python-cpu.md
"""

import argparse
import json
from pathlib import Path

MODELS = {
    "classifier-64": "ResNet-18 at width 0.25, small stem, 64 px input (the pipeline's classifier shape), `/v1/classify`",
    "resnet50-224": "ResNet-50, ImageNet stem, 224 px input, `/v1/classify`",
    "detector-320": "ResNet-18, ImageNet stem, CenterNet head, 320 px input, `/v1/detect`",
}
ANCHORS = {
    "python-tuned": "Python, tuned",
    "python-default": "Python, defaults",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--command", required=True)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    runs = [r for r in rows if not r.get("memory")]
    memory = [r for r in rows if r.get("memory")]
    anchors = [a for a in ANCHORS if any(r["server"] == a for r in runs)]

    print("# serve against a Python server (CPU)\n")
    print(f"Machine: {args.machine}. Command: `{args.command}`; one run, every row of it on this machine, "
          "the load generator included. Compare rows of one run only: the machine varies by 10–20% "
          "from one minute to the next.\n")
    print("- **serve**: the release build with its defaults (one ONNX Runtime session per model using "
          "every core, dynamic batching up to 8 images within 2 ms, JPEGs decoded downscaled in the DCT "
          "domain and resized in 8 bits).")
    print("- **Python, tuned**: `serve/benches/python_anchor/server.py`, FastAPI + Pillow + onnxruntime "
          "under uvicorn with one worker process per core, one session each, `intra_op_num_threads = 1` "
          "(one thread per process, the usual advice for one process per core).")
    print("- **Python, defaults**: the same server with ONNX Runtime's default threads (each session "
          "starts a pool as large as the machine).")
    print("- Both run the same ONNX Runtime (1.31.1) on the same `model.onnx`. Load: `wrk -t1 -cN`, "
          "POSTing one JPEG per request; **req/s counts 2xx answers only** (any others are listed under "
          "the table); p50/p99 from wrk's latency histogram. **CPU ms/req** is the "
          "server's own processes' CPU time over the run divided by its requests (wrk's share not "
          "included).")
    print("- Photos: a real photograph (scikit-learn's `china.jpg`, 640×427) cropped to 4:3 and resized "
          "to 500×375 and to 1280×960 (the latter upscaled), JPEG quality 90.\n")

    for model, description in MODELS.items():
        mine = [r for r in runs if r["model"] == model]
        if not mine:
            continue
        print(f"## {model}\n\n{description}.\n")
        head = "| photo | conn. | serve req/s | p50 ms | p99 ms | CPU ms/req |"
        rule = "|---|---:|---:|---:|---:|---:|"
        for anchor in anchors:
            head += f" {ANCHORS[anchor]} req/s | p50 ms | p99 ms | CPU ms/req | ratio |"
            rule += "---:|---:|---:|---:|---:|"
        print(head)
        print(rule)
        keys = sorted({(r["photo"], r["connections"]) for r in mine}, key=lambda k: (k[0], k[1]))
        for photo, connections in keys:
            at = {r["server"]: r for r in mine if r["photo"] == photo and r["connections"] == connections}
            s = at.get("serve")
            if s is None:
                continue
            line = (f"| {photo} | {connections} | {s['ok_rps']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
                    f"| {s['cpu_ms_per_request']:.2f} |")
            for anchor in anchors:
                a = at.get(anchor)
                if a is None:
                    line += " | | | | |"
                    continue
                line += (f" {a['ok_rps']:.1f} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | "
                         f"{a['cpu_ms_per_request']:.2f} | **{s['ok_rps'] / a['ok_rps']:.2f}×** |")
            print(line)
        failures = [r for r in mine if r["non_2xx"] or r["socket_errors"]]
        for r in failures:
            print(f"\n{r['server']} {r['photo']} c{r['connections']}: {r['non_2xx']} non-2xx answers, "
                  f"socket errors: {r['socket_errors'] or 'none'}")
        print()

    if memory:
        print("## Memory (resident set, all of a server's processes)\n")
        print("| model | server | at start MiB | after the table's requests MiB | requests | "
              "after 10 000 more MiB | trace (MiB, every 5 s of load) |")
        print("|---|---|---:|---:|---:|---:|---|")
        for m in memory:
            after = m.get("requests_after")
            trace = ", ".join(f"{v:.0f}" for v in m.get("rss_trace_mib", []))
            end = f"{m['rss_end_mib']:.0f} ({after} requests)" if after else "–"
            print(f"| {m['model']} | {m['server']} | {m['rss_start_mib']:.0f} | {m['rss_loaded_mib']:.0f} | "
                  f"{m['requests_before']} | {end} | {trace} |")
        print("\nThe 10 000-request run is on the 64 px model (500×375 photo, 16 connections); on the "
              "224 px models 10 000 requests would take over seven minutes per server, so their rows "
              "give the resident set before and after the table's own requests.")


if __name__ == "__main__":
    main()
