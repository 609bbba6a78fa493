"""A tiny program of the project for node tests: an HTTP server that says which pod answered,
and a client that counts which pods answered a Service.

    python -m modelrollout.cluster.node.testserver serve --host $(POD_IP) --port 8080
    python -m modelrollout.cluster.node.testserver fetch http://web.ns.svc:8080/ --count 20
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


def serve(host: str, port: int) -> int:
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"serving on {host}:{port} as {socket.gethostname()}", flush=True)
    server.serve_forever()
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
    s.add_argument("--tag", default="", help="ignored: marks the process in the process table")
    f = sub.add_parser("fetch")
    f.add_argument("url")
    f.add_argument("--count", type=int, default=10)
    f.add_argument("--message-file", type=Path, default=Path("/dev/termination-log"))
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        return serve(args.host, args.port)
    return fetch(args.url, args.count, args.message_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
