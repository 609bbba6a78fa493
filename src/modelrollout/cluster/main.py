"""``modelrollout cluster up|down|env|status|build``: the command-line face of `LocalCluster`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import shlex
import sys
import time
from pathlib import Path

from modelrollout import exitcodes
from modelrollout.cluster import binaries
from modelrollout.cluster.controlplane import LocalCluster
from modelrollout.cluster.process import ComponentError
from modelrollout.cluster.settings import ClusterSettings, default_state_root

NODE_MODULE = "modelrollout.cluster.node"
NODE_HOOK = "start_node_agent"
"""``up`` calls ``modelrollout.cluster.node.start_node_agent(cluster: LocalCluster) -> None``
when that function exists (unless --no-node). It must start the agent as a
``modelrollout.cluster.process.Component`` in ``cluster.layout.run``, so that ``down`` and
``status`` see it like the control plane, and return once the agent is running."""


def settings_from(args: argparse.Namespace) -> ClusterSettings:
    return ClusterSettings(
        name=args.name,
        state_root=Path(args.state_root) if args.state_root else default_state_root(),
        bin_dir=Path(args.bin_dir) if args.bin_dir else None,
    )


def node_hook() -> object | None:
    """The node agent's start function, when the node package provides one."""
    if importlib.util.find_spec(NODE_MODULE) is None:
        return None
    return getattr(importlib.import_module(NODE_MODULE), NODE_HOOK, None)


def env_lines(cluster: LocalCluster) -> list[str]:
    """Shell lines for ``eval "$(modelrollout cluster env)"``: kubectl and KUBECONFIG."""
    return [
        f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig_path))}",
        f'export PATH={shlex.quote(str(cluster.bin_dir))}:"$PATH"',
    ]


def do_up(cluster: LocalCluster, with_node: bool) -> int:
    started = time.monotonic()
    print(f"cluster {cluster.name}: starting in {cluster.layout.root}", file=sys.stderr)
    try:
        cluster.up()
        hook = node_hook() if with_node else None
        if callable(hook):
            hook(cluster)
    except ComponentError as err:
        print(f"cluster {cluster.name}: FAILED: {err}", file=sys.stderr)
        down = f"modelrollout cluster down --name {cluster.name}"
        print(f"logs: {cluster.layout.run}; clean up: {down}", file=sys.stderr)
        return exitcodes.FAILURE
    took = time.monotonic() - started
    print(f"cluster {cluster.name}: ready at {cluster.server_url} ({took:.1f} s)", file=sys.stderr)
    print(f'use it: eval "$(modelrollout cluster env --name {cluster.name})"', file=sys.stderr)
    return exitcodes.OK


def do_status(cluster: LocalCluster) -> int:
    statuses = cluster.status()
    for status in statuses:
        health = "healthy" if status.healthy else "unhealthy"
        pid = status.pid if status.pid is not None else "-"
        print(f"{status.name:<24} {status.state:<8} pid {pid!s:<8} {health:<9} {status.log_path}")
        for line in status.log_tail:
            print(f"    | {line}")
    if cluster.layout.state_file.exists():
        print(f"api server: {cluster.server_url}  kubeconfig: {cluster.kubeconfig_path}")
    all_healthy = bool(statuses) and all(s.healthy for s in statuses)
    return exitcodes.OK if all_healthy else exitcodes.FAILURE


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cluster = LocalCluster(settings_from(args))
    try:
        if args.action == "build":
            print(binaries.build())
            return exitcodes.OK
        if args.action == "up":
            return do_up(cluster, with_node=not args.no_node)
        if args.action == "down":
            cluster.down(keep_state=args.keep_state)
            print(f"cluster {cluster.name}: stopped", file=sys.stderr)
            return exitcodes.OK
        if args.action == "env":
            print("\n".join(env_lines(cluster)))
            return exitcodes.OK
        return do_status(cluster)
    except binaries.BinariesMissingError as err:
        print(f"modelrollout cluster: {err}", file=sys.stderr)
        return exitcodes.FAILURE
