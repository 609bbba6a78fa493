"""``modelrollout operator``: run the kopf operator that drives Model and ModelVersion resources."""

from __future__ import annotations

import argparse

from modelrollout import exitcodes

HELP = "run the operator (watches Model and ModelVersion resources)"
DESCRIPTION = """\
Run the modelrollout operator. It watches Model and ModelVersion resources,
runs evaluation Jobs, moves canary traffic and promotes or rolls back.

Inside a pod it uses the pod's ServiceAccount; outside, $KUBECONFIG or
~/.kube/config. Needs the 'operator' extra (no TensorFlow)."""


def _priority(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="watch every namespace (default)"
    )
    parser.add_argument(
        "--peering",
        default="modelrollout",
        help="kopf peering object name used to elect one active replica (default: %(default)s)",
    )
    parser.add_argument(
        "--priority",
        type=_priority,
        default=0,
        help="peering priority of this replica; the highest live one works; 'auto' derives a "
        "distinct one from the pod name (default: 0)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=60,
        help="seconds a replica's heartbeat counts; a standby takes over this long after "
        "the active replica dies (default: %(default)s)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=8080,
        help="port of the liveness endpoint /healthz (default: %(default)s)",
    )
    parser.add_argument(
        "--health-host",
        default="0.0.0.0",
        help="address of the liveness endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=8081,
        help="port of the operator's Prometheus endpoint /metrics (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        help="address of /metrics (default: %(default)s)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="run without peering (a single replica; development only)",
    )
    parser.add_argument(
        "--serving-image",
        help="image of the model server and evaluation runner (default: modelrollout-serving)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug details")


def run(args: argparse.Namespace) -> int:
    from modelrollout.cli import require_extra

    require_extra("operator", "kopf", "kubernetes")
    from modelrollout.operator import main as operator_main

    operator_main.run(args)
    return exitcodes.OK
