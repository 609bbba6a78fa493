"""Measure the local node: apply -> available for a 2-replica Deployment, scale-to-zero ->
processes gone, and the cost of the Service proxy (requests/s direct to a pod vs through
the Service's ClusterIP, one new connection per request, from the host).

Usage: .venv/bin/python bench/node_pods.py [--runs 3] [--requests 500]
Starts a throwaway cluster (binaries must be built) with its node agent, and stops both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from modelrollout.cluster.controlplane import LocalCluster
from modelrollout.cluster.node import start_node_agent
from modelrollout.cluster.settings import ClusterSettings

IMAGE = "modelrollout-serving:bench"
TIMEOUT = 120.0


def manifest(name: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "web",
        "image": IMAGE,
        "command": ["python", "-m", "modelrollout.cluster.node.testserver"],
        "args": ["serve", "--host", "$(POD_IP)", "--port", "8080", "--tag", f"bench-{name}"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    }
    template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    return {"apiVersion": "v1", "kind": "List", "items": [deployment, service]}


def until(check: Any, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > TIMEOUT:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def marked(tag: str) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += tag.encode() in (entry / "cmdline").read_bytes()
    return count


def rate(url: str, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
    return requests / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mr-node-bench-") as root:
        cluster = LocalCluster(ClusterSettings(name="node-bench", state_root=Path(root)))
        try:
            cluster.up()
            start_node_agent(cluster)
            kubectl = cluster.kubectl
            kubectl("create", "namespace", "bench")
            until(
                lambda: kubectl("get", "sa", "default", "-n", "bench", check=False).returncode == 0,
                "sa",
            )
            for run in range(args.runs):
                name = f"web{run}"
                started = time.monotonic()
                kubectl("apply", "-f", "-", stdin=json.dumps(manifest(name)))

                def available(n: str = name) -> bool:
                    out = kubectl("get", "deploy", n, "-n", "bench", "-o", "json").stdout
                    return bool(json.loads(out)["status"].get("availableReplicas", 0) == 2)

                until(available, "available")
                up = time.monotonic() - started
                kubectl("scale", "deploy", name, "-n", "bench", "--replicas=0")
                down = until(lambda n=name: marked(f"bench-{n}") == 0, "processes gone")
                print(
                    f"run {run + 1}: apply -> 2 available {up:.2f} s; scale 0 -> gone {down:.2f} s"
                )
            kubectl("scale", "deploy", "web0", "-n", "bench", "--replicas=2")
            pods = json.loads(
                kubectl("get", "pods", "-n", "bench", "-l", "app=web0", "-o", "json").stdout
            )
            until(lambda: marked("bench-web0") == 2, "web0 back")
            until(
                lambda: (
                    kubectl(
                        "rollout", "status", "deploy/web0", "-n", "bench", check=False
                    ).returncode
                    == 0
                ),
                "ready",
            )
            pods = json.loads(
                kubectl("get", "pods", "-n", "bench", "-l", "app=web0", "-o", "json").stdout
            )
            pod_ip = pods["items"][0]["status"]["podIP"]
            svc = json.loads(kubectl("get", "svc", "web0", "-n", "bench", "-o", "json").stdout)
            direct = rate(f"http://{pod_ip}:8080/", args.requests)
            proxied = rate(f"http://{svc['spec']['clusterIP']}/", args.requests)
            print(
                f"{args.requests} requests, new connection each: direct {direct:.0f} req/s, "
                f"through Service proxy {proxied:.0f} req/s (ratio {proxied / direct:.2f})"
            )
        finally:
            cluster.down()


if __name__ == "__main__":
    main()
