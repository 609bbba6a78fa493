"""The bake window after promotion: judged against the previous version's baseline, passed,
failed (back to the previous version), inconclusive; the previous version kept warm; newer
candidates wait."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import analysis
from modelrollout.core import decisions as d
from modelrollout.core import spec as s
from modelrollout.core.analysis import Window
from modelrollout.core.spec import Phase
from modelrollout.core.state import CanaryWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ANALYSIS = {
    "intervalSeconds": 10,
    "minRequests": 20,
    "maxInconclusiveSeconds": 30,
    "thresholds": {"errorRate": {"max": 0.05}, "latencyP99Seconds": {"maxRatio": 2.0}},
}
GATES = {"metrics": [{"metric": "accuracy", "min": 0.8}]}
READY = d.ServerState(exists=True, replicas=2, ready_replicas=2)
V1_WARM = d.Sibling("iris-v1", 1, Phase.STABLE.value)
FAST = ((0.01, 95.0), (0.1, 100.0), (float("inf"), 100.0))
"""Latency buckets: p99 = 0.082 s (interpolated in the 0.01..0.1 bucket)."""
SLOW = ((0.01, 10.0), (0.1, 20.0), (1.0, 100.0), (float("inf"), 100.0))
"""Latency buckets: p99 ~ 0.99 s."""


def model(bake: int = 60, canary: dict[str, Any] | None = None, keep: int = 10) -> s.ModelSpec:
    return s.ModelSpec(
        name="iris",
        namespace="ns",
        uid="m",
        replicas=2,
        evaluation={"dataset": {"uri": "sklearn://iris"}, "gates": GATES},
        keep_previous_seconds=keep,
        canary={"analysis": ANALYSIS} if canary is None else canary,
        bake_seconds=bake,
    )


def observe(n: int, phase: Phase, stable: int | None, **kw: Any) -> d.Observed:
    art = s.Artifact(uri="file:///m.skops", sha256="a" * 64)
    version = s.VersionSpec(
        f"iris-v{n}", "ns", f"u{n}", "iris", n, art, bake_seconds=kw.pop("override", None)
    )
    return d.Observed(
        version=version,
        now=kw.pop("now", T0),
        status={"phase": phase.value, **kw.pop("status", {})},
        model=d.ModelState(kw.pop("model", model()), stable, kw.pop("promoted_at", T0)),
        siblings=kw.pop("siblings", (V1_WARM,)),
        server=kw.pop("server", READY),
        **kw,
    )


def baseline(requests: int = 400, errors: int = 0) -> dict[str, Any]:
    return analysis.window_to_status(Window(requests, errors, FAST, {"0": 200.0, "1": 200.0}))


def promote(**kw: Any) -> d.Decision:
    """v2 finishes Promoting (v1 stable) and becomes Stable; returns the decision."""
    status = kw.pop("status", {"canary": {"stableTotals": baseline()}})
    return d.decide(observe(2, Phase.PROMOTING, 1, status=status, **kw))


def baking(**kw: Any) -> dict[str, Any]:
    """v2's status right after the switch."""
    out = promote()
    return {"promotedAt": out.status["promotedAt"], "bake": out.status["bake"]}


def interval(start_s: float, requests: int = 100, errors: int = 0, **kw: Any) -> CanaryWindow:
    start = T0 + timedelta(seconds=start_s)
    canary = Window(requests, errors, kw.pop("latency", FAST), kw.pop("predictions", {}))
    return CanaryWindow(0, start, start + timedelta(seconds=10), Window(), canary)


def bake_step(now_s: float, status: dict[str, Any], **kw: Any) -> d.Decision:
    return d.decide(
        observe(2, Phase.STABLE, 2, status=status, now=T0 + timedelta(seconds=now_s), **kw)
    )


def test_promotion_starts_a_bake_with_the_canary_baseline() -> None:
    out = promote()
    assert (out.phase, out.reason) == (Phase.STABLE, "Promoted")
    assert out.actions == (d.Action.ENSURE_SERVER, d.Action.SWITCH_STABLE)
    bake = out.status["bake"]
    assert (bake["previousVersion"], bake["previousName"], bake["seconds"]) == (1, "iris-v1", 60)
    assert (bake["startedAt"], bake["until"]) == ("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    assert bake["baseline"]["requests"] == 400
    assert bake["baseline"]["latency"]["+Inf"] == 100.0
    assert bake["baselineNote"] is None
    assert bake["result"] is None
    assert "baking for 60s against version 1" in out.message
    json.dumps(out.status)  # the whole status is JSON (no +Inf floats)


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"model": model(bake=0)}, "no bake"),
        ({"model": model(bake=0), "override": 30}, "override"),
        ({"override": 0}, "override off"),
    ],
)
def test_bake_length_comes_from_the_version_override_else_the_model(
    kw: dict[str, Any], why: str
) -> None:
    bake = promote(**kw).status["bake"]
    want = {"no bake": None, "override": 30, "override off": None}[why]
    assert (bake and bake["seconds"]) == want


def test_no_bake_for_a_first_version_or_a_manual_promotion() -> None:
    first = d.decide(observe(1, Phase.PROMOTING, None, siblings=()))
    assert first.status["bake"] is None
    manual = promote(status={"manualPromotion": True})
    assert manual.status["bake"] is None


def test_without_canary_numbers_only_absolute_thresholds_apply_and_status_says_so() -> None:
    bake = promote(status={}).status["bake"]
    assert bake["baseline"] is None
    assert "absolute thresholds only" in bake["baselineNote"]
    thin = promote(status={"canary": {"stableTotals": baseline(requests=5)}}).status["bake"]
    assert thin["baseline"] is None
    assert "(canary) has 5 requests < minRequests 20" in thin["baselineNote"]
    # A slow interval passes (no baseline for the p99 ratio), errors still fail it.
    status = {"bake": bake}
    out = bake_step(20, status, window=interval(5, latency=SLOW))
    assert [h["verdict"] for h in out.status["bake"]["history"]] == ["Passed"]
    assert "stable.latencyP99Seconds" not in out.status["bake"]["history"][0]["values"]
    out = bake_step(20, status, window=interval(5, errors=10))
    assert (out.phase, out.reason) == (Phase.ROLLED_BACK, "BakeFailed")


def test_without_a_canary_the_previous_versions_lifetime_traffic_is_the_baseline() -> None:
    lifetime = Window(300, 3, FAST, {"0": 10.0})
    bake = promote(status={}, previous_traffic=lifetime).status["bake"]
    assert bake["baseline"]["source"] == "lifetime"
    assert (bake["baseline"]["requests"], bake["baseline"]["errors"]) == (300, 3)
    assert bake["baselineNote"] is None
    # The canary's numbers win when both exist (same traffic mix, same time).
    both = promote(previous_traffic=lifetime).status["bake"]
    assert (both["baseline"]["source"], both["baseline"]["requests"]) == ("canary", 400)
    # Relative limits now apply: a p99 twice the previous version's fails the interval.
    out = bake_step(20, {"bake": bake}, window=interval(5, latency=SLOW))
    assert (out.phase, out.reason) == (Phase.ROLLED_BACK, "BakeFailed")
    assert out.status["bake"]["rollback"]["kind"] == "maxRatio"


def test_bake_holds_while_intervals_pass_then_is_baked() -> None:
    status = baking()
    out = bake_step(15, status, window=interval(2))
    assert (out.phase, out.reason) == (Phase.STABLE, "Baking")
    assert out.actions == (d.Action.ENSURE_SERVER,)
    assert out.requeue <= 1.0
    assert "baking 15/60s" in out.message
    history = out.status["bake"]["history"]
    assert [h["verdict"] for h in history] == ["Passed"]
    assert history[0]["values"]["stable.requests"] == 400.0
    status = {**status, "bake": out.status["bake"]}
    out = bake_step(61, status, window=interval(50))
    assert (out.phase, out.reason) == (Phase.STABLE, "Baked")
    assert out.status["bake"]["result"] == "Passed"
    assert out.event is not None
    assert (out.event.type, out.event.reason) == ("Normal", "Baked")
    # Afterwards it serves with the verdict kept; no more bake passes.
    after = {**status, "bake": out.status["bake"], "reason": "Baked", "message": out.message}
    out = bake_step(90, after)
    assert (out.phase, out.reason) == (Phase.STABLE, "Baked")
    assert "bake" not in out.status


def test_regression_against_the_baseline_rolls_back_to_the_previous_version() -> None:
    status = baking()
    out = bake_step(22, status, window=interval(10, latency=SLOW))
    assert (out.phase, out.reason) == (Phase.ROLLED_BACK, "BakeFailed")
    assert out.actions == (d.Action.RESTORE_PREVIOUS_STABLE, d.Action.SCALE_SERVER_DOWN)
    bake = out.status["bake"]
    assert bake["result"] == "Failed"
    report = bake["rollback"]
    assert (report["metric"], report["kind"]) == ("latencyP99Seconds", "maxRatio")
    assert report["stable"] == pytest.approx(0.082)
    assert report["threshold"] == pytest.approx(2 * report["stable"])
    assert report["value"] > report["threshold"]
    assert report["intervalEnd"] == (T0 + timedelta(seconds=20)).isoformat()
    assert out.event is not None
    assert (out.event.type, out.event.reason) == ("Warning", "BakeFailed")
    assert "rolled back to version 1" in out.event.message
    assert "latencyP99Seconds" in out.message


def test_failed_bake_keeps_serving_when_the_previous_version_is_gone() -> None:
    gone = (d.Sibling("iris-v1", 1, Phase.SUPERSEDED.value),)
    out = bake_step(22, baking(), window=interval(10, errors=50), siblings=gone)
    assert (out.phase, out.reason) == (Phase.STABLE, "BakeFailedNoPrevious")
    assert d.Action.RESTORE_PREVIOUS_STABLE not in out.actions
    assert out.status["bake"]["result"] == "Failed"
    assert out.event is not None
    assert out.event.type == "Warning"
    assert "no longer warm" in out.message


def test_inconclusive_bake_waits_past_its_end_then_rolls_back() -> None:
    status = baking()
    out = bake_step(65, status, window=interval(50, requests=5))
    assert (out.phase, out.reason) == (Phase.STABLE, "Baking")
    assert "bake elapsed" in out.message
    assert "inconclusive" in out.message
    status = {**status, "bake": out.status["bake"]}
    out = bake_step(95, status)
    assert (out.phase, out.reason) == (Phase.ROLLED_BACK, "BakeFailed")
    assert "no conclusive passing interval" in out.status["bake"]["rollback"]["message"]


def test_inconclusive_passes_policy_bakes_on_time() -> None:
    policy = {"analysis": {**ANALYSIS, "inconclusivePasses": True}}
    status = baking()
    out = bake_step(95, status, model=model(canary=policy))
    assert (out.phase, out.reason) == (Phase.STABLE, "Baked")


def test_interval_from_before_the_bake_is_not_judged() -> None:
    """After an operator restart the analyst's first interval has only start scrapes (no
    window); a window that started before the bake (canary leftovers) is ignored."""
    status = baking()
    out = bake_step(5, status, window=None)
    assert (out.phase, out.reason, out.status["bake"]["history"]) == (Phase.STABLE, "Baking", [])
    early = CanaryWindow(
        0, T0 - timedelta(seconds=5), T0 + timedelta(seconds=5), Window(), Window(100, 90)
    )
    out = bake_step(6, status, window=early)
    assert out.status["bake"]["history"] == []


def test_previous_version_stays_warm_while_the_new_one_bakes() -> None:
    promoted = d.ModelState(spec=model(bake=60, keep=10), stable_version=2, promoted_at=T0)
    baking_v2 = (d.Sibling("iris-v2", 2, Phase.STABLE.value, baking=True),)
    done_v2 = (d.Sibling("iris-v2", 2, Phase.STABLE.value),)
    # Past keepPreviousSeconds and bakeSeconds, but v2 still bakes (inconclusive wait).
    late = T0 + timedelta(seconds=80)
    out = d.decide(observe(1, Phase.STABLE, 2, model=promoted.spec, now=late, siblings=baking_v2))
    assert (out.phase, out.reason) == (Phase.STABLE, "KeepingWarm")
    assert "bake ends" in out.message
    # Before v2's status shows the bake, time keeps v1: max(keep, bake) = 60 s.
    mid = T0 + timedelta(seconds=30)
    out = d.decide(observe(1, Phase.STABLE, 2, model=promoted.spec, now=mid, siblings=done_v2))
    assert out.reason == "KeepingWarm"
    out = d.decide(observe(1, Phase.STABLE, 2, model=promoted.spec, now=late, siblings=done_v2))
    assert (out.phase, out.actions) == (Phase.SUPERSEDED, (d.Action.SCALE_SERVER_DOWN,))


def test_after_the_rollback_the_previous_version_serves_and_the_rejected_one_is_removed() -> None:
    v1 = d.decide(observe(1, Phase.STABLE, 1, siblings=(d.Sibling("iris-v2", 2, "RolledBack"),)))
    assert (v1.phase, v1.reason, v1.actions) == (Phase.STABLE, "Serving", (d.Action.ENSURE_SERVER,))
    status = {"promotedAt": "2026-01-01T00:00:00Z", "reason": "BakeFailed"}
    v2 = d.decide(observe(2, Phase.ROLLED_BACK, 1, status=status))
    assert (v2.phase, v2.actions) == (Phase.ROLLED_BACK, (d.Action.DELETE_SERVER,))
    assert not d.candidate_again(observe(2, Phase.ROLLED_BACK, 1, status=status))
    assert d.superseded_by(observe(1, Phase.STABLE, 1)) is None


PASSED_JOB = d.JobState(
    exists=True,
    succeeded=True,
    message=json.dumps(
        {"form": "compact", "rows": 45, "candidate": {"accuracy": 0.95}, "baseline": None}
    ),
)
CANARY_STEPS = {"steps": [{"weight": 50}], "analysis": ANALYSIS}


@pytest.mark.parametrize("policy", [{"analysis": ANALYSIS}, CANARY_STEPS], ids=["direct", "canary"])
def test_newer_candidate_waits_for_the_bake_to_end(policy: dict[str, Any]) -> None:
    siblings = (d.Sibling("iris-v2", 2, Phase.STABLE.value, baking=True), V1_WARM)
    obs = observe(
        3, Phase.EVALUATING, 2, job=PASSED_JOB, siblings=siblings, model=model(canary=policy)
    )
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.EVALUATING, "WaitingForStable")
    assert "version 2 is baking" in out.message
    assert out.status["evaluation"]["passed"] is True
    # Re-judging the same Job keeps its completion time (no status write every pass).
    again = d.decide(
        observe(
            3,
            Phase.EVALUATING,
            2,
            job=PASSED_JOB,
            siblings=siblings,
            model=model(canary=policy),
            status={"evaluation": out.status["evaluation"]},
            now=T0 + timedelta(seconds=9),
        )
    )
    assert again.status == out.status
    # Bake over: v3 moves on.
    done = (d.Sibling("iris-v2", 2, Phase.STABLE.value), d.Sibling("iris-v1", 1, "Superseded"))
    out = d.decide(
        observe(3, Phase.EVALUATING, 2, job=PASSED_JOB, siblings=done, model=model(canary=policy))
    )
    assert out.phase in (Phase.PROMOTING, Phase.CANARY)


def test_canary_waits_while_a_previous_version_is_warm_but_direct_promotion_does_not() -> None:
    siblings = (d.Sibling("iris-v2", 2, Phase.STABLE.value), V1_WARM)
    canary = observe(
        3, Phase.EVALUATING, 2, job=PASSED_JOB, siblings=siblings, model=model(canary=CANARY_STEPS)
    )
    out = d.decide(canary)
    assert (out.phase, out.reason) == (Phase.EVALUATING, "WaitingForStable")
    assert "previous version 1 is still warm" in out.message
    direct = observe(3, Phase.EVALUATING, 2, job=PASSED_JOB, siblings=siblings)
    assert d.decide(direct).phase == Phase.PROMOTING


def test_canary_records_the_stable_side_as_the_bake_baseline() -> None:
    status = {"canary": {"step": 0, "stepStartedAt": T0.isoformat(), "history": []}}
    windows = [
        CanaryWindow(
            0,
            T0 + timedelta(seconds=k),
            T0 + timedelta(seconds=k + 10),
            Window(100, 1, FAST, {"a": 60.0}),
            Window(50),
        )
        for k in (0, 10)
    ]
    for i, w in enumerate(windows):
        obs = observe(
            2,
            Phase.CANARY,
            1,
            status=status,
            window=w,
            now=T0 + timedelta(seconds=10 * i + 10),
            model=model(
                canary={"steps": [{"weight": 50, "durationSeconds": 600}], "analysis": ANALYSIS}
            ),
        )
        out = d.decide(obs)
        status = {"canary": out.status["canary"]}
    totals = analysis.window_from_status(status["canary"]["stableTotals"])
    assert (totals.requests, totals.errors) == (200, 2)
    assert dict(totals.latency) == {0.01: 190.0, 0.1: 200.0, float("inf"): 200.0}
    assert totals.predictions == {"a": 120.0}


def test_a_route_router_canary_does_not_wait_for_a_warm_previous_version() -> None:
    routed = model(canary=CANARY_STEPS)
    routed = s.ModelSpec(
        **{**routed.__dict__, "traffic": s.TrafficSpec(router=s.Router.GATEWAY_API)}
    )
    siblings = (d.Sibling("iris-v2", 2, Phase.STABLE.value), V1_WARM)
    obs = observe(3, Phase.EVALUATING, 2, job=PASSED_JOB, siblings=siblings, model=routed)
    assert d.decide(obs).phase == Phase.CANARY
