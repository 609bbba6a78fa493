"""core.analysis on the real server's /metrics: what was sent is what the interval shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelrollout.core import analysis, canary
from tests.serving.conftest import Trained
from tests.serving.harness import Server, launch, wait_ready

pytestmark = pytest.mark.serving

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def canary_server(artifacts: dict[str, Trained], workdir: Path) -> Iterator[Server]:
    """The same iris model as a second process: the 'canary' pod."""
    server = wait_ready(
        launch(str(artifacts["iris"].path), workdir, name="iris", args=["--model-version", "4"])
    )
    yield server
    assert server.stop() == 0, server.log()


def _scrape(server: Server) -> analysis.Scrape:
    status, text = server.http("GET", "/metrics")
    assert status == 200
    return analysis.parse(str(text))


def _send(server: Server, rows: list[list[float]], batch: int, bad: int) -> None:
    for i in range(0, len(rows), batch):
        status, body = server.http(
            "POST", "/v1/models/iris:predict", {"instances": rows[i : i + batch]}
        )
        assert status == 200, body
    for _ in range(bad):
        status, _ = server.http("POST", "/v1/models/iris:predict", {"instances": [[1.0, 2.0]]})
        assert status == 400
    assert server.http("GET", "/v1/models/iris")[0] == 200  # a probe: not traffic


def test_interval_counts_errors_and_drift(
    iris_server: Server, canary_server: Server, artifacts: dict[str, Trained]
) -> None:
    iris = artifacts["iris"]
    every, setosa_heavy = iris.x.tolist(), iris.x[:60].tolist()
    _send(iris_server, every[:10], 5, 1)  # before the interval: must not count
    starts = _scrape(iris_server), _scrape(canary_server)

    _send(iris_server, every, 10, 3)  # 15 good requests, 3 errors
    _send(canary_server, setosa_heavy, 4, 7)  # 15 good requests, 7 errors
    stable = analysis.version_window([(starts[0], _scrape(iris_server))])
    can = analysis.version_window([(starts[1], _scrape(canary_server))])

    assert (stable.requests, stable.errors, stable.restarted_pods) == (18, 3, 0)
    assert (can.requests, can.errors) == (22, 7)
    assert can.error_rate == pytest.approx(7 / 22)
    assert stable.latency[-1][1] == 18
    p99 = stable.latency_quantile(0.99)
    assert p99 is not None
    assert 0 < p99 <= 10
    want_stable = Counter(str(v) for v in iris.estimator.predict(iris.x).tolist())
    want_canary = Counter(str(v) for v in iris.estimator.predict(iris.x[:60]).tolist())
    assert stable.predictions == want_stable
    assert can.predictions == want_canary
    js = analysis.jensen_shannon_distance(stable.predictions, can.predictions)
    assert js == pytest.approx(analysis.jensen_shannon_distance(want_stable, want_canary))
    assert js is not None
    assert js > 0.3

    spec = canary.canary_from_dict(
        {"analysis": {"minRequests": 10, "thresholds": {"errorRate": {"maxIncrease": 0.05}}}}
    )
    result = canary.judge_interval(
        spec, 0, start=T0, end=T0 + timedelta(seconds=30), stable=stable, canary=can
    )
    assert result.breach is not None
    assert result.breach.metric == "errorRate"
    assert result.breach.value == pytest.approx(7 / 22)


def test_a_restarted_pod_counts_from_zero(
    artifacts: dict[str, Trained], workdir: Path, iris_server: Server
) -> None:
    """A scrape of a new process after one with higher counters: the restart is detected."""
    _send(iris_server, artifacts["iris"].x[:50].tolist(), 10, 2)  # more than the new one sees
    before = _scrape(iris_server)
    fresh = wait_ready(
        launch(str(artifacts["iris"].path), workdir, name="iris", args=["--model-version", "3"])
    )
    try:
        _send(fresh, artifacts["iris"].x[:6].tolist(), 3, 1)
        after = _scrape(fresh)
    finally:
        assert fresh.stop() == 0, fresh.log()
    win = analysis.version_window([(before, after)])
    assert (win.requests, win.errors, win.restarted_pods) == (3, 1, 1)
