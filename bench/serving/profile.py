"""Where a request's time goes: our server under load, profiled with pyinstrument.

Starts ``modelrollout serve --runtime auto`` (lr pipeline, pinned to CPU 0)
under pyinstrument (a sampling profiler, 1 ms interval), drives it with wrk
(REST, batch 1) or ghz (gRPC) from CPU 1, stops it with SIGTERM, and prints the
top functions by own time and the call tree. Also measures the per-request
floor: server CPU per request for a status GET (no model work) and a predict.

    .venv/bin/python bench/serving/profile.py [--protocol rest|grpc] [--seconds 10]

pyinstrument is a benchmark-only dependency (``pip install pyinstrument``).
"""

from __future__ import annotations

import argparse
import pstats
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
import models
import peers


def start(
    python: Path, work: models.Workload, ports: tuple[int, int], out: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        "taskset", "-c", peers.SERVER_CPU, str(python), "-m", "pyinstrument", "-r", "session",
        "-o", str(out), "-i", "0.001", "-m", "modelrollout", "serve", "--model-name", work.name,
        "--model-uri", str(work.skops_path), "--host", peers.HOST, "--grpc-port", str(ports[0]),
        "--rest-port", str(ports[1]), "--termination-log", "", "--log-level", "WARNING",
    ]  # fmt: skip
    log = (out.parent / "profile-server.log").open("wb")
    return subprocess.Popen(cmd, cwd=peers.REPO, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def floor(pid: int, url: str, body: bytes | None, seconds: int, workdir: Path) -> str:
    """Server CPU µs per request and req/s for one request shape (wrk, 16 connections)."""
    before = bench.cpu_seconds(pid)
    if body is None:
        cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{bench.CONCURRENCY}", f"-d{seconds}s", url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        total = int(out.split(" requests in")[0].split()[-1])
    else:
        total = int(bench.run_wrk(url, body, seconds, workdir)["requests"])
    cpu_us = (bench.cpu_seconds(pid) - before) / max(total, 1) * 1e6
    return f"{cpu_us:.0f} µs CPU/request, {total / seconds:,.0f} req/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    workdir = bench.RESULTS / "work"
    (work,) = models.build_workloads(workdir, ["lr"])
    ports = (bench.free_port(), bench.free_port())
    session = workdir / f"profile-{args.protocol}.pyisession"
    proc = start(peers.REPO / ".venv" / "bin" / "python", work, ports, session)
    base = f"http://{peers.HOST}:{ports[1]}/v1/models/{work.name}"
    body = peers.Target("x", "ours", [], peers.REPO, base, base).body(work.rows(1))
    wait_ready(base)
    pid = bench.tree_pids(proc.pid)[-1]  # the python under taskset
    if args.protocol == "rest":
        print("floor, status GET:", floor(pid, base, None, args.seconds, workdir))
        print("floor, predict batch 1:", floor(pid, f"{base}:predict", body, args.seconds, workdir))
    else:
        ghz = Path.home() / ".cache/modelrollout-bench/bin/ghz"
        request = models.grpc_request(work, 1, workdir)
        protoset = models.protoset(workdir / "tfserving.protoset")
        target = peers.Target("x", "ours", [], peers.REPO, base, base, ports[0])
        before = bench.cpu_seconds(pid)
        res = bench.run_ghz(ghz, target, request, protoset, args.seconds)
        cpu_us = (bench.cpu_seconds(pid) - before) / max(res["requests"], 1) * 1e6
        print(f"gRPC predict batch 1: {cpu_us:.0f} µs CPU/request, {res['rps']:,.0f} req/s")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    render(session, workdir, args.top)
    return 0


def render(session: Path, workdir: Path, top: int) -> None:
    """Top functions by own time (pstats) and the trimmed call tree (text)."""
    python = str(peers.REPO / ".venv" / "bin" / "python")
    stats_file = workdir / "profile.pstats"
    load = [python, "-m", "pyinstrument", "--load", str(session)]
    subprocess.run([*load, "-r", "pstats", "-o", str(stats_file)], check=True)
    stats = pstats.Stats(str(stats_file))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\ntop {top} functions by own time (share of {total:.1f} s sampled):")
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (path, line, name), (_, _, own, cum, _) in entries[:top]:
        short = "/".join(Path(path).parts[-2:])
        print(f"{own / total:6.1%} own {cum / total:6.1%} cum  {name}  ({short}:{line})")
    tree = subprocess.run(
        [*load, "-r", "text", "--no-color", "--no-unicode"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print("\ncall tree (pyinstrument, trimmed):")
    print("\n".join(tree.splitlines()[:80]))


if __name__ == "__main__":
    raise SystemExit(main())
