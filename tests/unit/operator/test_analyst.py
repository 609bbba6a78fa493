"""The analyst against a real HTTP /metrics endpoint on loopback: in a bake it scrapes only the
new stable version's pods, and after a restart its first interval only takes start scrapes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modelrollout.core import builders
from modelrollout.operator.analysis import AnalystSettings, CanaryAnalyst, Target

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Metrics:
    """What the fake model server exposes: a requests counter we move between scrapes."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0

    def text(self) -> str:
        series = 'modelrollout_requests_total{method="predict",code="%s"} %d'
        return "\n".join([series % ("OK", self.ok), series % ("INVALID_ARGUMENT", self.errors)])


@pytest.fixture
def server() -> Iterator[tuple[int, Metrics]]:
    metrics = Metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.text().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], metrics
    httpd.shutdown()
    httpd.server_close()


class Pods:
    """Lists one ready pod of version 2; records every selector asked for."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def pods(self, ns: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        version = selector.get(builders.LABEL_VERSION)
        self.asked.append(version)
        if version != "2":
            return []
        ready = [{"type": "Ready", "status": "True"}]
        status = {"phase": "Running", "podIP": "127.0.0.1", "conditions": ready}
        return [{"metadata": {"uid": "p2", "name": "iris-v2-a"}, "status": status}]


def test_bake_scrapes_only_the_new_stable_and_starts_over_after_a_restart(
    server: tuple[int, Metrics],
) -> None:
    port, metrics = server
    pods = Pods()
    target = Target("ns", "iris", None, 2, 0, 5.0)
    analyst = CanaryAnalyst(AnalystSettings(port=port))
    metrics.ok = 100
    assert analyst.observe(pods, "u2", target, T0) is None  # start scrapes only
    metrics.ok, metrics.errors = 150, 10
    assert analyst.observe(pods, "u2", target, T0 + timedelta(seconds=2)) is None  # not due
    window = analyst.observe(pods, "u2", target, T0 + timedelta(seconds=5))
    assert window is not None
    assert (window.step, window.start, window.end) == (0, T0, T0 + timedelta(seconds=5))
    assert (window.canary.requests, window.canary.errors) == (60, 10)
    assert window.stable.requests == 0
    assert set(pods.asked) == {"2"}
    # A restarted operator has no start scrapes: its first interval is only a start.
    restarted = CanaryAnalyst(AnalystSettings(port=port))
    assert restarted.observe(pods, "u2", target, T0 + timedelta(seconds=6)) is None
    metrics.ok = 170
    later = restarted.observe(pods, "u2", target, T0 + timedelta(seconds=11))
    assert later is not None
    assert (later.canary.requests, later.canary.errors) == (20, 0)


def test_lifetime_is_the_versions_traffic_since_its_pods_started(
    server: tuple[int, Metrics],
) -> None:
    port, metrics = server
    metrics.ok, metrics.errors = 40, 2
    analyst = CanaryAnalyst(AnalystSettings(port=port))
    traffic = analyst.lifetime(Pods(), "ns", "iris", 2)
    assert traffic is not None
    assert (traffic.requests, traffic.errors, traffic.pods) == (42, 2, 1)
    assert analyst.lifetime(Pods(), "ns", "iris", 1) is None  # no pods, no baseline
