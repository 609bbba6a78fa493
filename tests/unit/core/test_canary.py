"""core.canary: the policy view, interval verdicts, next actions and the replicas router."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.core import canary as c
from modelrollout.core.analysis import Window

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LAT_FAST = ((0.001, 0.0), (0.005, 100.0), (math.inf, 100.0))
LAT_SLOW = ((0.1, 0.0), (0.5, 100.0), (math.inf, 100.0))

POLICY: dict[str, Any] = {
    "steps": [{"weight": 10, "durationSeconds": 60}, {"weight": 50, "durationSeconds": 60}],
    "analysis": {
        "intervalSeconds": 20,
        "minRequests": 50,
        "maxInconclusiveSeconds": 40,
        "thresholds": {
            "errorRate": {"max": 0.05, "maxIncrease": 0.01},
            "latencyP99Seconds": {"maxRatio": 2.0},
            "jsDistance": {"max": 0.2},
        },
    },
}


def _win(requests: int = 100, errors: int = 0, lat: Any = LAT_FAST, preds: Any = None) -> Window:
    return Window(requests, errors, lat, preds if preds is not None else {"0": 50, "1": 50}, 1)


def _judge(stable: Window, canary: Window, spec: c.CanarySpec | None = None) -> c.IntervalResult:
    spec = spec or c.canary_from_dict(POLICY)
    return c.judge_interval(
        spec, 0, start=T0, end=T0 + timedelta(seconds=20), stable=stable, canary=canary
    )


def test_policy_defaults_and_values() -> None:
    assert c.canary_from_dict({}) == c.CanarySpec()
    spec = c.canary_from_dict(POLICY)
    assert spec.steps == (c.Step(10, 60.0), c.Step(50, 60.0))
    assert spec.thresholds[0] == c.Threshold("errorRate", max=0.05, max_increase=0.01)
    assert (spec.min_requests, spec.failure_limit, spec.inconclusive_passes) == (50, 1, False)
    assert c.canary_from_dict({"steps": [{"weight": 5}]}).steps == (c.Step(5, 60.0),)


@pytest.mark.parametrize(
    "raw",
    [
        {"steps": [{"weight": 50}, {"weight": 10}]},
        {"steps": [{"weight": 10}, {"weight": 10}]},
        {"steps": [{"weight": 0}]},
        {"steps": [{"weight": 101}]},
        {"steps": [{"weight": 10, "durationSeconds": -1}]},
        {"analysis": {"intervalSeconds": 0}},
        {"analysis": {"failureLimit": 0}},
        {"analysis": {"thresholds": {"accuracy": {"max": 1}}}},
        {"analysis": {"thresholds": {"psi": {"maxRatio": 2}}}},
        {"analysis": {"thresholds": {"errorRate": {"min": 0.1}}}},
        {"analysis": {"thresholds": {"errorRate": {}}}},
        {"analysis": {"thresholds": {"errorRate": {"max": -1}}}},
    ],
)
def test_policy_rejects(raw: dict[str, Any]) -> None:
    with pytest.raises(c.CanarySpecError):
        c.canary_from_dict(raw)


def test_interval_passes() -> None:
    result = _judge(_win(errors=1), _win(errors=2))
    assert result.verdict is c.Verdict.PASSED
    assert result.values["errorRate"] == 0.02
    assert result.values["stable.errorRate"] == 0.01
    assert result.values["jsDistance"] == 0


@pytest.mark.parametrize(
    ("stable", "canary", "breach"),
    [
        (_win(), _win(errors=6), c.Breach("errorRate", 0.06, 0.05, "max", 0.0)),
        (_win(errors=1), _win(errors=3), c.Breach("errorRate", 0.03, 0.02, "maxIncrease", 0.01)),
        (
            _win(),
            _win(lat=LAT_SLOW),
            c.Breach("latencyP99Seconds", 0.496, 0.00992, "maxRatio", 0.00496),
        ),
    ],
)
def test_interval_fails_with_the_first_breach(
    stable: Window, canary: Window, breach: c.Breach
) -> None:
    result = _judge(stable, canary)
    assert result.verdict is c.Verdict.FAILED
    assert result.breach is not None
    assert (result.breach.metric, result.breach.kind) == (breach.metric, breach.kind)
    assert result.breach.value == pytest.approx(breach.value)
    assert result.breach.threshold == pytest.approx(breach.threshold)
    assert result.breach.stable == pytest.approx(breach.stable)


def test_drift_fails() -> None:
    result = _judge(_win(), _win(preds={"0": 95, "1": 5}))
    assert result.breach is not None
    assert result.breach.metric == "jsDistance"
    assert result.breach.value > 0.2


def test_limits_are_judged_in_metric_order_whatever_the_key_order() -> None:
    """The API server stores the thresholds' keys sorted (jsDistance before psi): the first
    breach reported must not depend on it."""
    limits = {"jsDistance": {"max": 0.1}, "psi": {"max": 0.1}, "errorRate": {"max": 0.5}}
    spec = c.canary_from_dict({"analysis": {"thresholds": limits}})
    assert [t.metric for t in spec.thresholds] == ["errorRate", "psi", "jsDistance"]
    result = _judge(_win(), _win(preds={"0": 95, "1": 5}), spec)
    assert result.breach is not None
    assert result.breach.metric == "psi"


def test_ratio_against_a_zero_stable_is_not_checked() -> None:
    spec = c.canary_from_dict({"analysis": {"thresholds": {"errorRate": {"maxRatio": 2}}}})
    assert _judge(_win(), _win(errors=10), spec).verdict is c.Verdict.PASSED


@pytest.mark.parametrize(("stable", "canary"), [(100, 49), (49, 100), (0, 0)])
def test_too_few_requests_is_inconclusive_even_when_failing(stable: int, canary: int) -> None:
    result = _judge(_win(stable), _win(canary, errors=canary))
    assert result.verdict is c.Verdict.INCONCLUSIVE
    assert result.breach is None


def _result(verdict: c.Verdict, at: float, step: int = 0) -> c.IntervalResult:
    breach = c.Breach("errorRate", 0.5, 0.05, "max") if verdict is c.Verdict.FAILED else None
    values = {"requests": 10.0, "stable.requests": 100.0}
    start = T0 + timedelta(seconds=at)
    return c.IntervalResult(step, start, start + timedelta(seconds=20), verdict, values, breach)


def _next(history: list[c.IntervalResult], at: float, step: int = 0, **over: Any) -> c.NextAction:
    raw = {**POLICY, "analysis": {**POLICY["analysis"], **over}}
    return c.next_action(c.canary_from_dict(raw), step, T0, history, T0 + timedelta(seconds=at))


def test_hold_until_the_duration_elapsed() -> None:
    action = _next([_result(c.Verdict.PASSED, 0)], 30)
    assert (action.kind, action.weight, action.requeue) == (c.Kind.HOLD, 10, 20)
    assert _next([], 50).requeue == 10


def test_advance_then_promote() -> None:
    action = _next([_result(c.Verdict.PASSED, 40)], 60)
    assert (action.kind, action.weight, action.step) == (c.Kind.ADVANCE, 50, 1)
    assert _next([_result(c.Verdict.PASSED, 40, step=1)], 60, step=1).kind is c.Kind.PROMOTE


def test_first_failure_rolls_back_with_its_numbers() -> None:
    failed = _result(c.Verdict.FAILED, 0)
    action = _next([failed], 20)
    assert action.kind is c.Kind.ROLLBACK
    assert action.failed == failed
    assert "errorRate 0.5 > max 0.05 in interval 2026-01-01T00:00:00+00:00.." in action.message


def test_failure_limit_counts_across_steps() -> None:
    history = [_result(c.Verdict.FAILED, -100), _result(c.Verdict.PASSED, 40)]
    assert _next(history, 60, failureLimit=2).kind is c.Kind.ADVANCE
    history.append(_result(c.Verdict.FAILED, 60))
    assert _next(history, 80, failureLimit=2).kind is c.Kind.ROLLBACK


def test_inconclusive_waits_bounded_then_rolls_back() -> None:
    history = [_result(c.Verdict.PASSED, 0), _result(c.Verdict.INCONCLUSIVE, 40)]
    action = _next(history, 70)
    assert (action.kind, action.requeue) == (c.Kind.INCONCLUSIVE_WAIT, 20)
    assert "10 < minRequests 50" in action.message
    assert _next(history, 95).requeue == 5
    action = _next(history, 100)
    assert action.kind is c.Kind.ROLLBACK
    assert "no conclusive passing interval within 40 s" in action.message
    assert _next(history, 100, inconclusivePasses=True).kind is c.Kind.ADVANCE


def test_a_failure_under_the_limit_waits_for_a_pass() -> None:
    history = [_result(c.Verdict.FAILED, 40)]
    assert _next(history, 60, failureLimit=3).kind is c.Kind.INCONCLUSIVE_WAIT
    history.append(_result(c.Verdict.PASSED, 60))
    assert _next(history, 80, failureLimit=3).kind is c.Kind.ADVANCE


def test_intervals_started_before_the_step_do_not_count() -> None:
    assert _next([_result(c.Verdict.PASSED, -10)], 60).kind is c.Kind.INCONCLUSIVE_WAIT
    assert _next([_result(c.Verdict.PASSED, 40, step=1)], 60).kind is c.Kind.INCONCLUSIVE_WAIT


def test_without_thresholds_steps_advance_on_time() -> None:
    spec = c.canary_from_dict({"steps": POLICY["steps"]})
    assert c.next_action(spec, 0, T0, [], T0 + timedelta(seconds=60)).kind is c.Kind.ADVANCE


def test_step_out_of_range() -> None:
    with pytest.raises(c.CanarySpecError):
        _next([], 0, step=2)


@pytest.mark.parametrize(
    ("stable", "weight", "cap", "replicas", "achieved"),
    [
        (1, 10, 10, 1, 50.0),
        (1, 50, 10, 1, 50.0),
        (1, 75, 10, 3, 75.0),
        (4, 10, 10, 1, 20.0),
        (4, 25, 10, 1, 20.0),
        (4, 30, 10, 2, 100 / 3),
        (9, 10, 10, 1, 10.0),
        (3, 90, 5, 5, 62.5),
    ],
)
def test_replica_split(
    stable: int, weight: float, cap: int, replicas: int, achieved: float
) -> None:
    split = c.replica_split(stable, weight, cap)
    assert split.canary_replicas == replicas
    assert split.achieved_weight == pytest.approx(achieved)


@given(st.integers(1, 50), st.floats(0.5, 99.5), st.integers(1, 60))
def test_replica_split_is_the_nearest_reachable_weight(
    stable: int, weight: float, cap: int
) -> None:
    split = c.replica_split(stable, weight, cap)
    assert 1 <= split.canary_replicas <= cap
    assert split.achieved_weight == pytest.approx(
        100 * split.canary_replicas / (stable + split.canary_replicas)
    )
    best = min(abs(100 * n / (stable + n) - weight) for n in range(1, cap + 1))
    assert abs(split.achieved_weight - weight) == pytest.approx(best)


@pytest.mark.parametrize(
    ("stable", "weight", "cap"), [(0, 10, 1), (1, 0, 1), (1, 100, 1), (1, 10, 0)]
)
def test_replica_split_rejects(stable: int, weight: float, cap: int) -> None:
    with pytest.raises(ValueError, match="stable_replicas"):
        c.replica_split(stable, weight, cap)


finite = st.floats(0, 1e6, allow_nan=False)
results = st.builds(
    c.IntervalResult,
    step=st.integers(0, 19),
    start=st.datetimes(timezones=st.just(UTC)),
    end=st.datetimes(timezones=st.just(UTC)),
    verdict=st.sampled_from(c.Verdict),
    values=st.dictionaries(st.sampled_from(c.METRICS), st.none() | finite),
    breach=st.none()
    | st.builds(
        c.Breach, st.sampled_from(c.METRICS), finite, finite, st.just("max"), st.none() | finite
    ),
)


@given(results)
def test_status_round_trip(result: c.IntervalResult) -> None:
    raw = c.result_to_status(result)
    assert json.loads(json.dumps(raw)) == raw
    assert c.result_from_status(raw) == result


def test_status_drops_non_finite_numbers() -> None:
    result = c.IntervalResult(0, T0, T0, c.Verdict.PASSED, {"latencyP99Seconds": math.inf})
    assert c.result_to_status(result)["values"] == {"latencyP99Seconds": None}


def test_trimmed_keeps_every_failure() -> None:
    history = [_result(c.Verdict.FAILED, 0)] + [
        _result(c.Verdict.PASSED, 20 * i) for i in range(1, 30)
    ]
    kept = c.trimmed(history, keep=5)
    assert kept == [history[0], *history[-5:]]
    assert c.trimmed(history[:3], keep=5) == history[:3]
