"""A webhook receiver for the alert tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records every POST (path, status answered, JSON body). The first ``fail`` POSTs are
    answered 500; with ``hold`` nothing is answered until ``release`` is set."""

    def __init__(self, fail: int = 0, hold: bool = False) -> None:
        self.fail = fail
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.posts: list[tuple[str, int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.release.wait(timeout=30)
                with receiver.lock:
                    code = 500 if len(receiver.posts) < receiver.fail else 200
                    receiver.posts.append((self.path, code, body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def accepted(self, path: str | None = None) -> list[dict[str, Any]]:
        """Bodies answered 200, for one path or all."""
        with self.lock:
            return [b for p, code, b in self.posts if code == 200 and path in (None, p)]

    def failed(self) -> int:
        with self.lock:
            return sum(1 for _, code, _ in self.posts if code != 200)
