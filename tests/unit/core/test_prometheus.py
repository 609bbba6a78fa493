"""core.prometheus and its use in core.canary: policy, templates, answers, judging."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import canary as c
from modelrollout.core import prometheus as prom
from modelrollout.core.analysis import Window

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ERRORS = (
    'sum(rate(modelrollout_requests_total{model="{{model}}",version="{{version}}",code!="OK"}'
    "[{{interval}}])) or vector(0)"
)
RATE = 'sum(rate(modelrollout_requests_total{namespace="{{namespace}}",version="{{version}}"}[1m]))'
PROM: dict[str, Any] = {
    "address": "http://127.0.0.1:9090/",
    "queries": [
        {"name": "errors", "query": ERRORS, "max": 0.5, "maxIncrease": 0.1},
        {"name": "rate", "query": RATE, "min": 1.0, "maxRatio": 3.0},
    ],
}
POLICY: dict[str, Any] = {
    "steps": [{"weight": 50, "durationSeconds": 20}],
    "analysis": {
        "intervalSeconds": 10,
        "minRequests": 5,
        "thresholds": {"errorRate": {"max": 0.2}},
        "prometheus": PROM,
    },
}


def _win(requests: int = 100, errors: int = 0) -> Window:
    return Window(requests, errors, ((0.001, 0.0), (math.inf, float(requests))), {}, 1)


def _results(*rows: tuple[str, float | None, float | None, str]) -> prom.PrometheusResults:
    return prom.PrometheusResults(tuple(prom.QueryResult(*row) for row in rows))


GOOD = _results(("errors", 0.0, 0.05, ""), ("rate", 10.0, 9.0, ""))


def _judge(
    results: prom.PrometheusResults | None, canary: Window | None = None, **over: Any
) -> c.IntervalResult:
    spec = c.canary_from_dict({**POLICY, "analysis": {**POLICY["analysis"], **over}})
    return c.judge_interval(
        spec,
        0,
        start=T0,
        end=T0 + timedelta(seconds=10),
        stable=_win(),
        canary=canary or _win(),
        prometheus=results,
    )


def test_policy_is_read_with_its_limits() -> None:
    spec = c.canary_from_dict(POLICY).prometheus
    assert spec is not None
    assert spec.address == "http://127.0.0.1:9090"
    assert spec.queries == (
        prom.Query("errors", ERRORS, max=0.5, max_increase=0.1),
        prom.Query("rate", RATE, max_ratio=3.0, min=1.0),
    )
    assert spec.queries[0].metric == "prometheus.errors"
    assert c.canary_from_dict({"analysis": {}}).prometheus is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"address": "prometheus:9090"}, "address"),
        ({"address": "http://a b"}, "address"),
        ({"queries": []}, "1..10"),
        ({"queries": [PROM["queries"][0]] * 11}, "1..10"),
        ({"queries": [PROM["queries"][0]] * 2}, "unique"),
        ({"queries": [{"name": "x", "query": "up", "max": 1}]}, "{{version}}"),
        ({"queries": [{"name": "x", "query": 'up{v="{{ version }}"}', "max": 1}]}, "{{version}}"),
        ({"queries": [{"name": "x", "query": "{{version}}{{job}}", "max": 1}]}, "'job'"),
        ({"queries": [{"name": "x", "query": "{{version}}"}]}, "at least one"),
        ({"queries": [{"name": "1x", "query": "{{version}}", "max": 1}]}, "name"),
        ({"queries": [{"name": "x", "query": "{{version}}", "maxRatio": -1}]}, "negative"),
        ({"queries": [{"name": "x", "query": "{{version}}", "min": 2, "max": 1}]}, "min 2.0 > max"),
    ],
)
def test_policy_rejects_naming_the_problem(change: dict[str, Any], words: str) -> None:
    raw = {**POLICY, "analysis": {"prometheus": {**PROM, **change}}}
    with pytest.raises(c.CanarySpecError, match=r"analysis\.prometheus") as err:
        c.canary_from_dict(raw)
    assert words in str(err.value)


def test_render_fills_every_placeholder() -> None:
    text = prom.render(ERRORS, model="iris", namespace="ml", version=7, interval=30.0)
    assert text == (
        'sum(rate(modelrollout_requests_total{model="iris",version="7",code!="OK"}[30s]))'
        " or vector(0)"
    )
    assert 'namespace="ml",version="2"' in prom.render(
        RATE, model="m", namespace="ml", version=2, interval=0.4
    )
    assert prom.render(
        "x[{{interval}}]{{version}}", model="", namespace="", version=1, interval=0.4
    )
    assert "[1s]" in prom.render("[{{interval}}]", model="", namespace="", version=1, interval=0.4)


def _vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {}, "value": [1.5, v]} for v in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_value_of_scalar_and_one_sample_vector() -> None:
    assert prom.value_of(_vector("0.25")) == 0.25
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1.5, "3"]}}
    assert prom.value_of(scalar) == 3.0
    assert prom.value_of(_vector("+Inf")) == math.inf


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (
            {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'},
            'bad_data: parse error: unexpected "}"',
        ),
        (_vector(), "no data"),
        (_vector("1", "2"), "2 series"),
        (_vector("NaN"), "NaN"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "'matrix'"),
        ({"status": "success", "data": {"resultType": "scalar", "result": None}}, "unreadable"),
    ],
)
def test_value_of_names_what_is_wrong(payload: dict[str, Any], words: str) -> None:
    with pytest.raises(prom.QueryError) as err:
        prom.value_of(payload)
    assert words in str(err.value)


def test_interval_passes_with_prometheus_values_recorded() -> None:
    result = _judge(GOOD)
    assert result.verdict is c.Verdict.PASSED
    assert result.values["prometheus.errors"] == 0.05
    assert result.values["stable.prometheus.rate"] == 10.0
    assert result.reason == ""


@pytest.mark.parametrize(
    ("results", "breach"),
    [
        (
            _results(("errors", 0.0, 0.6, ""), ("rate", 10.0, 9.0, "")),
            c.Breach("prometheus.errors", 0.6, 0.5, "max", 0.0),
        ),
        (
            _results(("errors", 0.3, 0.45, ""), ("rate", 10.0, 9.0, "")),
            c.Breach("prometheus.errors", 0.45, 0.4, "maxIncrease", 0.3),
        ),
        (
            _results(("errors", 0.0, 0.0, ""), ("rate", 10.0, 0.5, "")),
            c.Breach("prometheus.rate", 0.5, 1.0, "min", 10.0),
        ),
        (
            _results(("errors", 0.0, 0.0, ""), ("rate", 2.0, 7.0, "")),
            c.Breach("prometheus.rate", 7.0, 6.0, "maxRatio", 2.0),
        ),
        # a breach is a real signal: it fails the interval even when another query has no data
        (
            _results(("errors", None, None, "unreachable"), ("rate", 10.0, 0.5, "")),
            c.Breach("prometheus.rate", 0.5, 1.0, "min", 10.0),
        ),
    ],
)
def test_interval_fails_at_the_first_prometheus_breach(
    results: prom.PrometheusResults, breach: c.Breach
) -> None:
    result = _judge(results)
    assert result.verdict is c.Verdict.FAILED
    assert result.breach is not None
    assert (result.breach.metric, result.breach.kind) == (breach.metric, breach.kind)
    assert result.breach.value == pytest.approx(breach.value)
    assert result.breach.threshold == pytest.approx(breach.threshold)
    assert result.breach.stable == pytest.approx(breach.stable)


def test_built_in_thresholds_come_first() -> None:
    bad = _results(("errors", 0.0, 0.9, ""), ("rate", 10.0, 9.0, ""))
    result = _judge(bad, canary=_win(100, 30))
    assert result.breach is not None
    assert result.breach.metric == "errorRate"


def test_ratio_against_a_zero_stable_is_not_checked() -> None:
    result = _judge(_results(("errors", 0.0, 0.0, ""), ("rate", 0.0, 2.0, "")))
    assert result.verdict is c.Verdict.PASSED


@pytest.mark.parametrize(
    ("results", "reason"),
    [
        (
            _results(("errors", 0.0, None, "version 2: no data"), ("rate", 1.0, 1.0, "")),
            "prometheus.errors: version 2: no data",
        ),
        (
            _results(("errors", None, 0.0, "version 1: bad_data: parse error"), ("rate", 1, 1, "")),
            "prometheus.errors: version 1: bad_data: parse error",
        ),
        (_results(("errors", 0.0, 0.0, "")), "prometheus.rate: not queried"),
        (None, "prometheus.errors: not queried; prometheus.rate: not queried"),
    ],
)
def test_a_query_without_numbers_makes_the_interval_inconclusive(
    results: prom.PrometheusResults | None, reason: str
) -> None:
    result = _judge(results)
    assert result.verdict is c.Verdict.INCONCLUSIVE
    assert result.reason == reason
    assert result.breach is None


def test_too_few_requests_stays_the_first_check() -> None:
    result = _judge(_results(("errors", 0.0, 0.9, ""), ("rate", 1, 1, "")), canary=_win(2))
    assert result.verdict is c.Verdict.INCONCLUSIVE
    assert result.reason == ""


def test_the_reason_survives_status_and_reaches_the_messages() -> None:
    result = _judge(None)
    back = c.result_from_status(c.result_to_status(result))
    assert back.reason == result.reason
    assert back.verdict is c.Verdict.INCONCLUSIVE
    spec = c.canary_from_dict({**POLICY, "analysis": {**POLICY["analysis"], "intervalSeconds": 5}})
    waiting = c.next_action(spec, 0, T0, [back], T0 + timedelta(seconds=25))
    assert waiting.kind is c.Kind.INCONCLUSIVE_WAIT
    assert "prometheus.errors: not queried" in waiting.message
    late = c.next_action(spec, 0, T0, [back], T0 + timedelta(seconds=20 + 301))
    assert late.kind is c.Kind.ROLLBACK
    assert "prometheus.errors: not queried" in late.message


def test_a_min_breach_reads_as_less_than() -> None:
    failed = _judge(_results(("errors", 0.0, 0.0, ""), ("rate", 10.0, 0.5, "")))
    spec = c.canary_from_dict(POLICY)
    action = c.next_action(spec, 0, T0, [failed], T0 + timedelta(seconds=10))
    assert action.kind is c.Kind.ROLLBACK
    assert action.message.startswith("prometheus.rate 0.5 < min 1 (stable 10)")


def test_override_replaces_the_prometheus_policy_as_a_whole() -> None:
    from modelrollout.core import spec as s

    other = {"address": "http://other:9090", "queries": [PROM["queries"][1]]}
    merged = s.merged_canary(POLICY, {"analysis": {"prometheus": other}})
    assert merged.prometheus is not None
    assert merged.prometheus.address == "http://other:9090"
    assert [q.name for q in merged.prometheus.queries] == ["rate"]
    assert merged.thresholds == c.canary_from_dict(POLICY).thresholds


def test_prometheus_queries_alone_gate_the_steps() -> None:
    """No built-in thresholds: a step still waits for a passing interval, never on time alone."""
    raw = {**POLICY, "analysis": {"intervalSeconds": 5, "prometheus": PROM}}
    spec = c.canary_from_dict(raw)
    assert spec.thresholds == ()
    assert spec.gated
    after_hold = T0 + timedelta(seconds=25)
    assert c.next_action(spec, 0, T0, [], after_hold).kind is c.Kind.INCONCLUSIVE_WAIT
    passed = c.judge_interval(
        spec,
        0,
        start=T0,
        end=T0 + timedelta(seconds=20),
        stable=_win(),
        canary=_win(),
        prometheus=GOOD,
    )
    assert passed.verdict is c.Verdict.PASSED
    assert c.next_action(spec, 0, T0, [passed], after_hold).kind is c.Kind.PROMOTE
    assert not c.canary_from_dict({"steps": POLICY["steps"]}).gated
