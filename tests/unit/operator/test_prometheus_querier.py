"""operator.prometheus: failures become named query errors, never exceptions or numbers.

Answers of a real Prometheus are checked in tests/serving/test_prometheus_provider.py;
here only what needs no server: an unreachable address and the time budget.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from modelrollout.core import prometheus as prom
from modelrollout.operator.prometheus import PrometheusQuerier, PrometheusSettings, Subject

SUBJECT = Subject("ml", "iris", 1, 2, 10.0)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(address: str, *names: str) -> prom.PrometheusSpec:
    queries = tuple(prom.Query(n, 'up{version="{{version}}"}', max=1.0) for n in names)
    return prom.PrometheusSpec(address, queries)


def test_unreachable_server_names_the_address_for_both_versions() -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    got = PrometheusQuerier(PrometheusSettings(timeout=2.0)).results(
        _spec(address, "up"), SUBJECT, AT
    )
    (result,) = got.results
    assert (result.name, result.stable, result.canary) == ("up", None, None)
    assert result.error.count(f"{address} unreachable") == 2
    assert "version 1:" in result.error
    assert "version 2:" in result.error


def test_queries_past_the_budget_are_not_run() -> None:
    ticks = iter([0.0, 0.0, 11.0, 11.0])  # the start, then each check of the time left
    querier = PrometheusQuerier(PrometheusSettings(timeout=1.0, budget=10.0), lambda: next(ticks))
    address = f"http://127.0.0.1:{_closed_port()}"
    (result,) = querier.results(_spec(address, "up"), SUBJECT, AT).results
    assert "version 1: " + address in result.error
    assert "version 2: not run: the 10 s query budget ran out" in result.error
