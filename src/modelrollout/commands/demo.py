"""``modelrollout demo``: the whole loop on a local cluster with the bundled iris data."""

from __future__ import annotations

import argparse

HELP = "play the rollout story (evaluate, canary, promote, roll back, reject) on a local cluster"
DESCRIPTION = """\
Bring up the local cluster, install the CRDs and the operator, and play a story
with scikit-learn's bundled iris data under a small load generator: v1 becomes
stable, a better v2 passes a 50 % canary step and replaces it, v3 fails its
canary analysis on glitched rows and is rolled back automatically, a worse v4
is rejected offline while v2 keeps serving."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("all", "kopf", "grpc", "sklearn")
    from modelrollout import demo

    return demo.main(args)
