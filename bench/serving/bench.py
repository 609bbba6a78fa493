"""Serving benchmark: modelrollout vs MLServer vs KServe vs in-process predict, one run.

Run through ``bench/serving/run.sh`` (installs wrk, ghz and the peers' venvs).
Prints a markdown table and writes results.json, results.md and chart.png to
``bench/serving/results/``. Servers are pinned to CPU 0, load generators to CPU 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models
import peers
from models import Workload, build_workloads, grpc_request, in_process

RESULTS = peers.HERE / "results"
CONCURRENCY = 16


@dataclass
class Row:
    """One measurement: a server (or in-process), a model, a batch size, a protocol."""

    server: str
    model: str
    batch: int
    protocol: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    overhead_us: float
    cold_start_s: float
    rss_mb: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind((peers.HOST, 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants (MLServer forks workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    result, todo = [], [root]
    while todo:
        pid = todo.pop()
        result.append(pid)
        todo.extend(children.get(pid, []))
    return result


def cpu_seconds(root: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def start_and_time(target: peers.Target, body: bytes, log: Path) -> tuple[Any, float]:
    """Start a server; seconds from process start to the first answered prediction."""
    started = time.perf_counter()
    proc = target.start(log)
    deadline = started + 120
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            request = urllib.request.Request(
                target.predict_url, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            return proc, time.perf_counter() - started
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError(f"{target.name} not answering after 120 s: {log.read_text()[-2000:]}")


def stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def run_wrk(url: str, body: bytes, seconds: int, workdir: Path) -> dict[str, float]:
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    cmd = [
        "taskset", "-c", "1", "wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--latency",
        "-s", str(peers.HERE / "post.lua"), url,
    ]  # fmt: skip
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env=dict(os.environ, BODY=str(body_file))
    ).stdout
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {m[0]: float(m[1]) * scale[m[2]] for m in _WRK_LATENCY.findall(out)}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(n) for n in re.findall(r"Socket errors: .*?(\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"], "requests": total, "errors": errors}


def grpc_inputs(
    target: peers.Target, work: Workload, batch: int, args: argparse.Namespace
) -> tuple[Path, Path]:
    """(protoset, serialized request) for this server's gRPC API."""
    if target.kind == "ours":
        return args.protoset, grpc_request(work, batch, args.workdir)
    request = args.workdir / f"v2-{target.kind}-{work.name}-{batch}.bin"
    if not request.exists():
        rows = args.workdir / f"rows-{work.name}.json"
        rows.write_text(json.dumps(work.rows(max(args.batches))))
        python = args.bench_dir / target.kind / "bin" / "python"
        cmd = [str(python), str(peers.HERE / "v2_grpc.py"), target.kind, work.name, str(rows),
               str(args.workdir), *map(str, args.batches)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
    return args.workdir / f"v2-{target.kind}.protoset", request


def run_ghz(
    ghz: Path, target: peers.Target, request: Path, protoset: Path, seconds: int
) -> dict[str, float]:
    cmd = [
        "taskset", "-c", "1", str(ghz), "--insecure", "--protoset", str(protoset),
        "--call", target.grpc_call, "--binary-file", str(request),
        "-c", str(CONCURRENCY), "-z", f"{seconds}s", "-O", "json",
        f"{peers.HOST}:{target.grpc_port}",
    ]  # fmt: skip
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    lat = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    # ghz cancels the streams still open when the duration ends ("transport is closing"):
    # those are the load generator stopping, not server errors.
    errors = sum(
        n for msg, n in (report.get("errorDistribution") or {}).items()
        if "transport is closing" not in msg and "client connection is closing" not in msg
    )  # fmt: skip
    return {
        "rps": report["rps"], "p50": lat.get(50, float("nan")), "p99": lat.get(99, float("nan")),
        "requests": report["count"], "errors": errors,
    }  # fmt: skip


def measure(
    target: peers.Target, work: Workload, args: argparse.Namespace, baseline_us: dict[int, float]
) -> list[Row]:
    """Cold start, then REST load at each batch size (and gRPC for our server)."""
    log = args.workdir / f"{target.name.replace(' ', '_')}-{work.name}.log"
    colds = []
    for _ in range(args.cold_starts - 1):
        proc, seconds = start_and_time(target, target.body(work.rows(1)), log)
        stop(proc)
        colds.append(seconds)
    proc, seconds = start_and_time(target, target.body(work.rows(1)), log)
    cold = statistics.median([*colds, seconds])
    rows = []
    try:
        loads: list[tuple[str, int]] = [("rest", b) for b in args.batches]
        if target.grpc_port is not None and args.ghz:
            loads += [("grpc", b) for b in args.batches]
        for protocol, batch in loads:
            before = cpu_seconds(proc.pid)
            if protocol == "rest":
                res = run_wrk(target.predict_url, target.body(work.rows(batch)), args.seconds,
                              args.workdir)  # fmt: skip
            else:
                protoset, req = grpc_inputs(target, work, batch, args)
                res = run_ghz(args.ghz, target, req, protoset, args.seconds)
            cpu_us = (cpu_seconds(proc.pid) - before) / max(res["requests"], 1) * 1e6
            if target.kind != "ours":
                base = work.predict_us[batch]
            else:  # the call that server makes per request
                base = (work.onnx_us if target.name.endswith("auto") else baseline_us)[batch]
            rows.append(
                Row(target.name, work.name, batch, protocol, res["rps"], res["p50"], res["p99"],
                    cpu_us, cpu_us - base, cold, rss_mb(proc.pid), int(res["errors"]))
            )  # fmt: skip
            print(_line(rows[-1]), flush=True)
    finally:
        stop(proc)
    return rows


def _line(r: Row) -> str:
    return (
        f"| {r.server} | {r.model} | {r.batch} | {r.protocol} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | {r.cpu_us_per_req:,.0f} | {r.overhead_us:,.0f} | "
        f"{r.cold_start_s:.2f} | {r.rss_mb:.0f} | {r.errors} |"
    )


HEADER = (
    "| server | model | batch | protocol | req/s | p50 ms | p99 ms | CPU µs/req | "
    "overhead µs/req | cold start s | RSS MB | errors |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def targets(work: Workload, args: argparse.Namespace) -> list[peers.Target]:
    ours_venv = args.bench_dir / "serving"
    if not (ours_venv / "bin" / "modelrollout").exists():
        ours_venv = peers.REPO / ".venv"
    result = [
        peers.ours(ours_venv, work.skops_path, work.name, (free_port(), free_port()),
                   trust=work.trust_tree, runtime=runtime)
        for runtime in args.runtimes
    ]  # fmt: skip
    for tuned in (False, True):
        if "mlserver" in args.peers:
            ports = (free_port(), free_port(), free_port())
            workdir = args.workdir / f"mlserver-{work.name}-{int(tuned)}"
            result.append(peers.mlserver(args.bench_dir / "mlserver", work.joblib_path,
                                         work.name, ports, workdir, tuned=tuned))  # fmt: skip
        if "kserve" in args.peers:
            result.append(peers.kserve(args.bench_dir / "kserve", work.joblib_path, work.name,
                                       (free_port(), free_port()), tuned=tuned))  # fmt: skip
    return result


def in_process_rows(work: Workload, batches: list[int]) -> list[Row]:
    rows = []
    for batch in batches:
        for label, us in (
            ("in-process predict", work.predict_us[batch]),
            ("in-process predict_proba", work.proba_us[batch]),
            ("in-process predict + JSON", work.json_us[batch]),
            ("in-process onnx", work.onnx_us[batch]),
        ):
            rows.append(Row(label, work.name, batch, "-", 1e6 / us, us / 1e3, float("nan"),
                            us, 0.0, float("nan"), float("nan"), 0))  # fmt: skip
    return rows


def reused_peer_rows(path: Path, models: list[str], batches: list[int]) -> list[Row]:
    """Peer rows measured by an earlier run (named ``<peer> [re-used]`` in the table)."""
    rows = []
    for entry in json.loads(path.read_text()):
        row = Row(**entry)
        peer = row.server.startswith(("MLServer", "KServe"))
        if peer and row.model in models and row.batch in batches:
            row.server += " [re-used]"
            rows.append(row)
    for row in rows:
        print(_line(row), flush=True)
    return rows


def chart(rows: list[Row], path: Path) -> None:
    """One row of panels per (model, batch, protocol): requests/s and server CPU per request."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r.model, r.batch, r.protocol) for r in rows if r.protocol != "-"})
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 2.6 * len(groups)), squeeze=False)
    for (ax_rps, ax_cpu), (model, batch, protocol) in zip(axes, groups, strict=True):
        sel = [r for r in rows if (r.model, r.batch, r.protocol) == (model, batch, protocol)]
        limit = [r for r in rows if r.model == model and r.batch == batch and r.protocol == "-"]
        both = sel + limit
        names = [r.server.replace("in-process ", "in-proc ") for r in both]
        colors = [
            "C0" if "modelrollout" in n else ("C2" if "in-proc" in n else "C7") for n in names
        ]
        ax_rps.barh(names, [r.rps for r in both], color=colors)
        ax_rps.set_title(f"{model}, batch {batch}, {protocol}: requests/s (higher is better)")
        ax_cpu.barh(names, [r.cpu_us_per_req for r in both], color=colors)
        ax_cpu.set_title("server CPU µs per request (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["lr", "rf100"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--peers", nargs="*", default=["mlserver", "kserve"])
    parser.add_argument(
        "--runtimes", nargs="+", default=["sklearn", "auto"], help="our server's --runtime values"
    )
    parser.add_argument(
        "--reuse-peers",
        type=Path,
        help="results.json of an earlier run: its peer rows join this table (run no peers)",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--cold-starts", type=int, default=3, help="launches; median reported")
    parser.add_argument("--bench-dir", type=Path, default=Path.home() / ".cache/modelrollout-bench")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    args.workdir = RESULTS / "work"
    args.workdir.mkdir(exist_ok=True)
    ghz = args.bench_dir / "bin" / "ghz"
    args.ghz = ghz if ghz.exists() else None
    args.protoset = models.protoset(args.workdir / "tfserving.protoset")
    rows: list[Row] = []
    print(HEADER, flush=True)
    for work in build_workloads(args.workdir, args.models):
        in_process(work, args.batches)
        limit = in_process_rows(work, args.batches)
        for row in limit:
            print(_line(row), flush=True)
        rows += limit
        for target in targets(work, args):
            try:
                rows += measure(target, work, args, work.proba_us)
            except (RuntimeError, subprocess.CalledProcessError) as err:
                print(f"| {target.name} | {work.name} | failed: {str(err)[:300]} |", flush=True)
    if args.reuse_peers:
        rows += reused_peer_rows(args.reuse_peers, args.models, args.batches)
    (RESULTS / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    (RESULTS / "results.md").write_text(HEADER + "\n" + "\n".join(_line(r) for r in rows) + "\n")
    chart(rows, RESULTS / "chart.png")
    load = "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    with (RESULTS / "results.md").open("a") as f:
        f.write(f"\n{load} at the end of the run; servers pinned to CPU 0, load to CPU 1.\n")
    print(f"{load}; wrote {RESULTS}/results.md, results.json, chart.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
