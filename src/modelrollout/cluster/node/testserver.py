"""A tiny program of the project for node tests: an HTTP server that says which pod answered,
and a client that counts which pods answered a Service.

    python -m modelrollout.cluster.node.testserver serve --host $(POD_IP) --port 8080
    python -m modelrollout.cluster.node.testserver fetch http://web.ns.svc:8080/ --count 20

``serve --grpc-port`` adds a grpc.health.v1 server (for gRPC probes) that reports
SERVING once ``--ready-file`` exists.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """``/`` answers who served it; ``/healthz`` answers ok."""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok"
        else:
            server_ip = str(self.connection.getsockname()[0])
            body = json.dumps({"pod": socket.gethostname(), "ip": server_ip}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per request would drown the pod log."""


def grpc_health(host: str, port: int, ready_file: Path | None) -> Any:
    """A gRPC server with only grpc.health.v1: SERVING once ready_file exists (or at once)."""
    import threading
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    server.start()

    def follow() -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        while True:
            ready = ready_file is None or ready_file.exists()
            servicer.set("", serving if ready else not_serving)
            threading.Event().wait(0.2)

    threading.Thread(target=follow, daemon=True).start()
    return server


def serve(host: str, port: int, grpc_port: int, ready_file: Path | None) -> int:
    keep = grpc_health(host, grpc_port, ready_file) if grpc_port else None
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"serving on {host}:{port} as {socket.gethostname()}", flush=True)
    server.serve_forever()
    del keep
    return 0


def fetch(url: str, count: int, message_file: Path) -> int:
    """GET url count times (a new connection each) and record which pods answered."""
    answers: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        with urllib.request.urlopen(url, timeout=10) as resp:
            answers[json.loads(resp.read())["pod"]] += 1
    summary = json.dumps(dict(sorted(answers.items())))
    print(summary, flush=True)
    message_file.write_text(summary)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelrollout.cluster.node.testserver")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--grpc-port", type=int, default=0, help="also serve grpc.health.v1 here")
    s.add_argument("--ready-file", type=Path, help="gRPC health is SERVING once this exists")
    s.add_argument("--tag", default="", help="ignored: marks the process in the process table")
    f = sub.add_parser("fetch")
    f.add_argument("url")
    f.add_argument("--count", type=int, default=10)
    f.add_argument("--message-file", type=Path, default=Path("/dev/termination-log"))
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        return serve(args.host, args.port, args.grpc_port, args.ready_file)
    return fetch(args.url, args.count, args.message_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
