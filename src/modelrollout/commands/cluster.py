"""``modelrollout cluster``: a local Kubernetes control plane built from the official Go modules."""

from __future__ import annotations

import argparse

HELP = "start, stop or inspect the local Kubernetes cluster used by tests and the demo"
DESCRIPTION = """\
A real kube-apiserver, etcd and kube-controller-manager built from the
official Go modules (Kubernetes v1.37.2; first build: see README), started on
loopback with their own CA, RBAC and a state dir per cluster name.

  build   compile the binaries (cached by content hash; a no-op when built)
  up      start the control plane and wait for /readyz (harmless when running)
  env     print shell lines: eval "$(modelrollout cluster env)" then kubectl ...
  status  each component's state; a crashed one with its last log lines
  down    stop every process and remove the state dir"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "env", "status", "build"])
    parser.add_argument(
        "--name", default="modelrollout", help="cluster name; one state dir and port set each"
    )
    parser.add_argument(
        "--state-root",
        help="parent of the clusters' state dirs "
        "(default: $MODELROLLOUT_STATE or ~/.local/state/modelrollout)",
    )
    parser.add_argument(
        "--bin-dir", help="directory with the built binaries (default: the build cache)"
    )
    parser.add_argument(
        "--no-node", action="store_true", help="up: do not start the local node agent"
    )
    parser.add_argument(
        "--keep-state", action="store_true", help="down: keep certificates, etcd data and logs"
    )


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("cluster", "cryptography", "yaml")
    from modelrollout.cluster import main as cluster_main

    return cluster_main.run(args)
