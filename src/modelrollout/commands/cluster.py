"""``modelrollout cluster``: a local Kubernetes control plane built from the official Go modules."""

from __future__ import annotations

import argparse

HELP = "start, stop or inspect the local Kubernetes cluster used by tests and the demo"
DESCRIPTION = """\
A real kube-apiserver, etcd and kube-controller-manager built from the
official Go modules (first build: see README), started on loopback."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "env", "status", "build"])


def run(args: argparse.Namespace) -> int:
    from modelrollout.cluster import main as cluster_main

    return cluster_main.run(args)
