"""Measure the local control plane: time from ``up()`` to ready, and each component's memory.

Usage: .venv/bin/python bench/cluster_startup.py [--runs 3]
Starts a throwaway cluster in a temporary state dir per run (binaries must be built), prints
the start-up time of each run, then the resident memory (VmRSS) of each component after a
short settle, and stops everything.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from modelrollout.cluster.controlplane import LocalCluster
from modelrollout.cluster.settings import ClusterSettings


def rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(index: int, settle: float) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="mr-bench-") as root:
        cluster = LocalCluster(ClusterSettings(name=f"bench-{index}", state_root=Path(root)))
        started = time.monotonic()
        try:
            cluster.up()
            took = time.monotonic() - started
            time.sleep(settle)
            memory = {s.name: rss_mib(s.pid) for s in cluster.status() if s.pid is not None}
        finally:
            cluster.down()
    return took, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before measuring RSS")
    args = parser.parse_args()
    times = []
    for index in range(args.runs):
        took, memory = one_run(index, args.settle)
        times.append(took)
        mem = "  ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items())
        total = sum(memory.values())
        print(f"run {index + 1}: up -> ready {took:.1f} s; RSS: {mem}; total {total:.0f} MiB")
    times.sort()
    print(f"start-up: min {times[0]:.1f} s, median {times[len(times) // 2]:.1f} s")


if __name__ == "__main__":
    main()
