"""The load generator against a real HTTP server on loopback: what it sends and records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelrollout.traffic import Traffic, cycle, last_answer_after
from tests.conftest import wait_for


class _Handler(BaseHTTPRequestHandler):
    """Class 1 for a row, 400 for a row with a negative value (like a log model)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        row = body["instances"][0]
        code, answer = (400, {"error": "nan"}) if min(row) < 0 else (200, {"predictions": [1]})
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_cycle_sends_the_odd_row_every_nth_call() -> None:
    pick = cycle([[1.0], [2.0]], [-1.0], every=3)
    assert [pick(i) for i in range(4)] == [
        ([-1.0], "odd"),
        ([2.0], ""),
        ([1.0], ""),
        ([-1.0], "odd"),
    ]


def test_traffic_is_bounded_and_records_answers_and_failures(server: int) -> None:
    traffic = Traffic("127.0.0.1", "iris", cycle([[1.0]], [-1.0], 2), port=server, pause=0, limit=6)
    traffic.start()
    wait_for("six calls", lambda: len(traffic.calls) == 6, timeout=20)
    calls = traffic.stop()
    assert len(calls) == 6
    assert [c.ok for c in calls] == [False, True] * 3
    assert all(c.detail.startswith("400") and c.tag == "odd" for c in calls[::2])
    assert all(c.label == 1 for c in calls[1::2])


def test_a_refused_connection_is_a_failed_call() -> None:
    call = Traffic("127.0.0.1", "iris", cycle([[1.0]]), port=1, timeout=2).call([1.0])
    assert not call.ok
    assert call.detail.startswith("connection")


def test_last_answer_after_the_interval_end() -> None:
    assert last_answer_after("2026-11-28T01:12:37Z", []) is None
