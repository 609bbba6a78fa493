"""``python -m modelrollout.cluster.node``: run the node agent until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelrollout.cluster.node.settings import NodeSettings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modelrollout.cluster.node")
    parser.add_argument("--kubeconfig", required=True, type=Path, help="admin kubeconfig")
    parser.add_argument("--state-dir", required=True, type=Path, help="pods, volumes and logs")
    parser.add_argument("--node-name", default="modelrollout-node")
    parser.add_argument("--pod-network", default="127.10.0.0/17", help="loopback range for pods")
    parser.add_argument(
        "--service-network", default="127.10.128.0/17", help="loopback range for Service proxies"
    )
    parser.add_argument(
        "--no-schedule", action="store_true", help="do not bind pending pods (another agent does)"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(settings: NodeSettings) -> None:
    from modelrollout.cluster.node.agent import NodeAgent

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    # API calls and HTTP/gRPC probes run in threads: the default pool (CPUs + 4) is too
    # small for a few dozen pods probing every second.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="node"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await NodeAgent(settings).run(stopped)


def main(argv: list[str]) -> int:
    args = parse(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = NodeSettings(
        kubeconfig=args.kubeconfig,
        state_dir=args.state_dir,
        node_name=args.node_name,
        pod_network=args.pod_network,
        service_network=args.service_network,
        schedule=not args.no_schedule,
    )
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
