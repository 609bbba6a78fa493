"""The Prometheus provider against a real Prometheus scraping two real model-server processes.

Two iris servers play stable (version 1) and canary (version 2); Prometheus
scrapes both every second through a file_sd target file. Known traffic is
sent, then the operator's querier asks Prometheus what the canary policy
asks, and the numbers must be the traffic's: totals exact, error ratios exact
(both series of a ratio come from the same target, so they share sample times
and ``rate``'s extrapolation cancels out). Then bad, empty and ambiguous
queries must come back as named errors that make the interval inconclusive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelrollout.core import canary as c
from modelrollout.core import prometheus as prom
from modelrollout.core.analysis import Window
from modelrollout.operator.prometheus import PrometheusQuerier, Subject
from tests.prometheus_server import PrometheusServer, TargetGroup
from tests.serving.conftest import Trained
from tests.serving.harness import HOST, Server, launch, wait_ready, wait_until

pytestmark = [pytest.mark.serving, pytest.mark.prometheus]

SELECT = 'model="{{model}}",version="{{version}}",method="predict"'
TOTAL = f"sum(modelrollout_requests_total{{{SELECT}}})"
ERROR_RATIO = (
    f'sum(rate(modelrollout_requests_total{{{SELECT},code!="OK"}}[{{{{interval}}}}]))'
    f" / sum(rate(modelrollout_requests_total{{{SELECT}}}[{{{{interval}}}}]))"
)
GOOD, BAD = [[5.1, 3.5, 1.4, 0.2]], [[1.0, 2.0]]  # BAD: two features, the model wants four


@pytest.fixture(scope="module")
def pair(artifacts: dict[str, Trained], workdir: Path) -> Iterator[tuple[Server, Server]]:
    """iris served twice: version 1 (stable) and version 2 (canary)."""
    servers = [
        wait_ready(
            launch(str(artifacts["iris"].path), workdir, name="iris", args=["--model-version", v])
        )
        for v in ("1", "2")
    ]
    yield servers[0], servers[1]
    for server in servers:
        assert server.stop() == 0, server.log()


def scrape_both(prometheus: PrometheusServer, pair: tuple[Server, Server]) -> None:
    """Prometheus scrapes the stable server as version 1 and the canary as version 2."""
    prometheus.set_targets(
        [
            TargetGroup((f"{HOST}:{s.rest_port}",), {"model": "iris", "version": v})
            for s, v in zip(pair, ("1", "2"), strict=True)
        ]
    )
    prometheus.wait_targets_up(2)


def _send(server: Server, good: int, bad: int) -> None:
    """``good`` answered and ``bad`` rejected predict calls, the bad ones spread evenly."""
    every = (good + bad) // bad if bad else 0
    for i in range(good + bad):
        rejected = bool(every) and i % every == 0 and i // every < bad
        rows = BAD if rejected else GOOD
        status, body = server.http("POST", "/v1/models/iris:predict", {"instances": rows})
        assert status == (400 if rejected else 200), body


def _total(prometheus: PrometheusServer, version: int) -> float | None:
    promql = prom.render(TOTAL, model="iris", namespace="", version=version, interval=1)
    answer = prometheus.query(promql)
    try:
        return prom.value_of(answer)
    except prom.QueryError:
        return None


def test_provider_numbers_match_the_traffic(
    prometheus: PrometheusServer, pair: tuple[Server, Server]
) -> None:
    scrape_both(prometheus, pair)
    stable, canary = pair
    before = {v: _total(prometheus, v) or 0.0 for v in (1, 2)}
    # Both series (OK and INVALID_ARGUMENT) exist before the interval, with counts large
    # enough that rate() does not cut its extrapolation at a counter start.
    for server in pair:
        _send(server, 20, 20)
    wait_until(
        "the warm-up calls scraped",
        lambda: all(_total(prometheus, v) == before[v] + 40 for v in (1, 2)),
    )
    time.sleep(3.0)  # at least two scrapes with the warm-up counts before the interval starts
    start = time.time()
    _send(stable, 60, 0)
    _send(canary, 45, 15)
    wait_until(
        "the traffic scraped",
        lambda: all(_total(prometheus, v) == before[v] + 100 for v in (1, 2)),
    )
    time.sleep(1.5)  # one more scrape: the interval ends on a sample after the traffic
    end = datetime.now(UTC)
    interval = math.ceil(end.timestamp() - start) + 1  # starts between warm-up and traffic
    spec = prom.spec_from_dict(
        {
            "address": prometheus.address,
            "queries": [
                {"name": "errorRatio", "query": ERROR_RATIO, "max": 0.05},
                {"name": "calls", "query": TOTAL, "min": 1},
            ],
        }
    )
    began = time.monotonic()
    results = PrometheusQuerier().results(spec, Subject("", "iris", 1, 2, interval), end)
    took = time.monotonic() - began
    got = results.by_name()
    assert (got["errorRatio"].stable, got["errorRatio"].error) == (0.0, "")
    assert got["errorRatio"].canary == pytest.approx(0.25, rel=1e-9)
    assert got["calls"] == prom.QueryResult("calls", before[1] + 100, before[2] + 100, "")

    policy = c.canary_from_dict(
        {"steps": [{"weight": 50}], "analysis": {"minRequests": 1, "prometheus": spec_raw(spec)}}
    )
    window = Window(62, 1, ((math.inf, 62.0),), {}, 1)
    result = c.judge_interval(
        policy,
        0,
        start=end - timedelta(seconds=interval),
        end=end,
        stable=window,
        canary=window,
        prometheus=results,
    )
    assert result.verdict is c.Verdict.FAILED
    assert result.breach is not None
    assert (result.breach.metric, result.breach.kind) == ("prometheus.errorRatio", "max")
    assert (result.breach.threshold, result.breach.stable) == (0.05, 0.0)
    print(
        f"\nprovider: 4 instant queries in {took * 1000:.0f} ms; "
        f"prometheus RSS {prometheus.rss_bytes() / 2**20:.0f} MiB"
    )


def spec_raw(spec: prom.PrometheusSpec) -> dict[str, object]:
    """The spec back as the resource writes it (for ``canary_from_dict``)."""
    queries = []
    for q in spec.queries:
        limits = {
            "max": q.max,
            "min": q.min,
            "maxIncrease": q.max_increase,
            "maxRatio": q.max_ratio,
        }
        queries.append(
            {"name": q.name, "query": q.query, **{k: v for k, v in limits.items() if v is not None}}
        )
    return {"address": spec.address, "queries": queries}


@pytest.mark.parametrize(
    ("promql", "words"),
    [
        ('sum(rate(modelrollout_requests_total{version="{{version}}"}[{{interval}}])', "bad_data"),
        ('modelrollout_no_such_metric{version="{{version}}"}', "no data"),
        ('modelrollout_requests_total{version="{{version}}"}', "series; aggregate"),
        ('sum(modelrollout_requests_total{version="{{version}}"})[1m:]', "'matrix'"),
        ('0 * sum(up{version="{{version}}"}) / 0', "NaN"),
    ],
)
def test_unusable_answers_make_the_interval_inconclusive_naming_the_query(
    prometheus: PrometheusServer, pair: tuple[Server, Server], promql: str, words: str
) -> None:
    scrape_both(prometheus, pair)
    spec = prom.PrometheusSpec(prometheus.address, (prom.Query("probe", promql, max=1.0),))
    at = datetime.now(UTC)
    (result,) = PrometheusQuerier().results(spec, Subject("", "iris", 1, 2, 5), at).results
    assert (result.stable, result.canary) == (None, None)
    assert words in result.error, result.error
    assert "version 1:" in result.error
    assert "version 2:" in result.error
    policy = c.CanarySpec(min_requests=1, prometheus=spec)
    window = Window(10, 0, ((math.inf, 10.0),), {}, 1)
    judged = c.judge_interval(
        policy,
        0,
        start=at,
        end=at,
        stable=window,
        canary=window,
        prometheus=prom.PrometheusResults((result,)),
    )
    assert judged.verdict is c.Verdict.INCONCLUSIVE
    assert judged.reason.startswith("prometheus.probe: version 1:")
