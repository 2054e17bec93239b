"""Drives `serve` and the Python anchor server with wrk and writes the report.

Called by scripts/serve-bench.sh, which prepares everything this needs (see its header):
the release `serve`, the anchor's venv, the models and the photos. Standard library only.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LUA = Path(__file__).resolve().parent / "post.lua"
TICKS = os.sysconf("SC_CLK_TCK")

# name, route, what it is
MODELS = [
    ("classifier-64", "/v1/classify", "ResNet-18 at width 0.25, small stem, 64 px (the pipeline's classifier shape)"),
    ("resnet50-224", "/v1/classify", "ResNet-50, ImageNet stem, 224 px"),
    ("detector-320", "/v1/detect", "ResNet-18, ImageNet stem, CenterNet head, 320 px"),
]


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's workers are child processes)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids.extend(tree(int(child)))
    return pids


def rss_mib(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICKS


class Server:
    def __init__(self, kind: str, models: Path, port: int, args):
        self.kind = kind
        self.port = port
        env = dict(os.environ)
        if kind == "serve":
            command = [str(args.serve), "--models", str(models), "--addr", f"127.0.0.1:{port}"]
        else:
            env["EXEMPLAR_MODELS"] = str(models)
            if kind == "python-tuned":
                env["ORT_INTRA_OP_THREADS"] = "1"
            command = [
                str(args.uvicorn), "server:app", "--app-dir", str(ROOT / "serve/benches/python_anchor"),
                "--workers", str(args.cores), "--port", str(port), "--log-level", "warning",
            ]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=open(args.logs / f"{kind}-{models.name}.log", "w"),
                                        start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"error: {kind} exited at start-up (see {args.logs})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        # uvicorn answers once the first worker is up: let the others load too.
                        time.sleep(3 if kind != "serve" else 0.5)
                        return
            except OSError:
                time.sleep(0.3)
        sys.exit(f"error: {kind} did not become ready")

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url: str, photo: Path, connections: int, duration: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "60s",
         "-s", str(LUA), url],
        env=dict(os.environ, WRK_BODY=str(photo)), capture_output=True, text=True, check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    failed = int(non_2xx.group(1)) if non_2xx else 0
    return {
        "requests": requests,
        "rps": rps,
        # Answers with a 2xx status per second: what the ratios compare.
        "ok_rps": rps * (requests - failed) / max(requests, 1),
        "p50_ms": seconds(latency["50"]) * 1e3,
        "p99_ms": seconds(latency["99"]) * 1e3,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=Path, required=True)
    parser.add_argument("--uvicorn", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True, help="folder of one folder per model")
    parser.add_argument("--photos", type=Path, nargs="+", required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--servers", nargs="+", default=["serve", "python-tuned", "python-default"])
    parser.add_argument("--only", nargs="*", help="model names to run (default: all)")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    raw = args.out.with_suffix(".jsonl")
    rows = []
    port = 18080
    with raw.open("w") as log:
        for name, route, _ in MODELS:
            if args.only and name not in args.only:
                continue
            single = args.logs / "models" / name
            single.mkdir(parents=True, exist_ok=True)
            link = single / name
            if not link.exists():
                link.symlink_to((args.models / name).resolve())
            for kind in args.servers:
                port += 1
                server = Server(kind, single, port, args)
                url = f"http://127.0.0.1:{port}{route}"
                try:
                    started_rss = rss_mib(server.process.pid)
                    served = 0
                    for photo in args.photos:
                        wrk(url, photo, 4, 2)  # warm-up
                        for connections in args.connections:
                            cpu = cpu_seconds(server.process.pid)
                            result = wrk(url, photo, connections, args.duration)
                            result["cpu_ms_per_request"] = (
                                (cpu_seconds(server.process.pid) - cpu) * 1e3 / max(result["requests"], 1))
                            served += result["requests"]
                            row = {"model": name, "server": kind, "photo": photo.name,
                                   "connections": connections, **result}
                            rows.append(row)
                            log.write(json.dumps(row) + "\n")
                            log.flush()
                            print(json.dumps(row), file=sys.stderr)
                    memory = {"model": name, "server": kind, "memory": True,
                              "rss_start_mib": started_rss, "rss_loaded_mib": rss_mib(server.process.pid),
                              "requests_before": served}
                    if name == MODELS[0][0]:
                        # Memory over a long run: at least --memory-requests more, RSS after each stretch.
                        trace = []
                        while memory.setdefault("requests_after", 0) < args.memory_requests:
                            result = wrk(url, args.photos[0], 16, 5)
                            memory["requests_after"] += result["requests"]
                            trace.append(round(rss_mib(server.process.pid), 1))
                        memory["rss_trace_mib"] = trace
                    memory["rss_end_mib"] = rss_mib(server.process.pid)
                    rows.append(memory)
                    log.write(json.dumps(memory) + "\n")
                    print(json.dumps(memory), file=sys.stderr)
                finally:
                    server.stop()
    print(f"raw measurements: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
