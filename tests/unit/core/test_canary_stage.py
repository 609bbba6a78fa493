"""The Canary phase of the state machine: start, hold, advance, promote, roll back, leave."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import decisions as d
from modelrollout.core import spec as s
from modelrollout.core.analysis import Window
from modelrollout.core.spec import REJECTED, Phase
from modelrollout.core.state import CanaryWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GATES = {"metrics": [{"metric": "accuracy", "min": 0.8}]}
CANARY = {
    "steps": [{"weight": 20, "durationSeconds": 30}, {"weight": 50, "durationSeconds": 30}],
    "analysis": {
        "intervalSeconds": 10,
        "minRequests": 20,
        "thresholds": {"errorRate": {"max": 0.05}},
    },
}
PASSED_JOB = d.JobState(
    exists=True,
    succeeded=True,
    message=json.dumps(
        {"form": "compact", "rows": 45, "candidate": {"accuracy": 0.95}, "baseline": None}
    ),
)
READY = d.ServerState(exists=True, replicas=1, ready_replicas=1)


def model(canary: dict[str, Any] | None = None, replicas: int = 4) -> s.ModelSpec:
    return s.ModelSpec(
        name="iris",
        namespace="ns",
        uid="m",
        replicas=replicas,
        evaluation={"dataset": {"uri": "sklearn://iris"}, "gates": GATES},
        canary=CANARY if canary is None else canary,
    )


def observe(phase: Phase, stable: int | None = 1, **kw: Any) -> d.Observed:
    status = {"phase": phase.value, **kw.pop("status", {})}
    art = s.Artifact(uri="file:///m.skops", sha256="a" * 64)
    return d.Observed(
        version=s.VersionSpec("iris-v2", "ns", "u2", "iris", 2, art, canary=kw.pop("override", {})),
        now=kw.pop("now", T0),
        status=status,
        model=d.ModelState(kw.pop("model", model()), stable, T0),
        server=kw.pop("server", READY),
        **kw,
    )


def in_step(step: int, started: datetime, history: list[Any] | None = None) -> dict[str, Any]:
    return {
        "canary": {"step": step, "stepStartedAt": started.isoformat(), "history": history or []}
    }


def window(step: int, start: datetime, canary_errors: int, requests: int = 100) -> CanaryWindow:
    end = start + timedelta(seconds=10)
    return CanaryWindow(
        step, start, end, Window(requests=200), Window(requests=requests, errors=canary_errors)
    )


def test_passed_evaluation_starts_the_canary_at_the_first_step() -> None:
    out = d.decide(observe(Phase.EVALUATING, job=PASSED_JOB))
    assert (out.phase, out.reason) == (Phase.CANARY, "CanaryStarted")
    assert out.actions == (d.Action.SET_WEIGHT,)
    canary = out.status["canary"]
    # 4 stable pods: one canary pod is 20 % of the Service's pods.
    assert (canary["step"], canary["weight"], canary["canaryReplicas"]) == (0, 20, 1)
    assert (canary["achievedWeight"], canary["stableReplicas"]) == (20, 4)
    assert canary["history"] == []
    assert out.status["evaluation"]["passed"] is True
    assert out.event is not None
    assert out.event.type == "Normal"


@pytest.mark.parametrize(
    ("stable", "policy"),
    [(None, CANARY), (1, {}), (1, {"steps": []})],
    ids=["first", "no", "empty"],
)
def test_no_canary_without_steps_or_a_stable_version(
    stable: int | None, policy: dict[str, Any]
) -> None:
    out = d.decide(observe(Phase.EVALUATING, stable, job=PASSED_JOB, model=model(policy)))
    assert (out.phase, out.reason) == (Phase.PROMOTING, "EvaluationPassed")


def test_step_holds_and_keeps_the_route_while_its_time_runs() -> None:
    now = T0 + timedelta(seconds=12)
    out = d.decide(observe(Phase.CANARY, status=in_step(0, T0), now=now))
    assert (out.phase, out.reason) == (Phase.CANARY, "CanaryStep")
    assert out.actions == (d.Action.SET_WEIGHT,)
    assert 0 < out.requeue <= 1.0
    assert out.event is None


def test_passing_interval_after_the_hold_advances_then_promotes_at_the_end() -> None:
    now = T0 + timedelta(seconds=40)
    obs = observe(
        Phase.CANARY,
        status=in_step(0, T0),
        now=now,
        window=window(0, T0 + timedelta(seconds=30), 0),
    )
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.CANARY, "CanaryAdvanced")
    canary = out.status["canary"]
    assert (canary["step"], canary["weight"], canary["canaryReplicas"]) == (1, 50, 4)
    assert canary["stepStartedAt"] == "2026-01-01T00:00:40Z"
    assert [h["verdict"] for h in canary["history"]] == ["Passed"]
    assert out.event is not None
    assert out.event.reason == "CanaryAdvanced"

    later = now + timedelta(seconds=40)
    obs = observe(
        Phase.CANARY,
        status={"canary": canary},
        now=later,
        window=window(1, now + timedelta(seconds=25), 1),
    )
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.PROMOTING, "CanaryPassed")
    assert out.actions == (d.Action.ENSURE_SERVER,)
    assert [h["verdict"] for h in out.status["canary"]["history"]] == ["Passed", "Passed"]


def test_failed_interval_routes_back_to_stable_first_then_scales_down() -> None:
    start = T0 + timedelta(seconds=5)
    obs = observe(
        Phase.CANARY,
        status=in_step(0, T0),
        now=T0 + timedelta(seconds=16),
        window=window(0, start, canary_errors=20),
    )
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.ROLLED_BACK, "CanaryFailed")
    assert out.actions == (d.Action.RESTORE_STABLE_ROUTE, d.Action.SCALE_SERVER_DOWN)
    report = out.status["canary"]["rollback"]
    assert (report["metric"], report["kind"]) == ("errorRate", "max")
    assert report["value"] == pytest.approx(0.2)
    assert report["threshold"] == pytest.approx(0.05)
    assert report["intervalStart"] == start.isoformat()
    assert report["intervalEnd"] == (start + timedelta(seconds=10)).isoformat()
    assert out.status["canary"]["weight"] == 0
    assert out.event is not None
    assert out.event.type == "Warning"
    assert "errorRate 0.2 > max 0.05" in out.event.message
    assert "version 1" in out.message


def test_too_few_requests_is_inconclusive_not_a_failure() -> None:
    obs = observe(
        Phase.CANARY,
        status=in_step(0, T0),
        now=T0 + timedelta(seconds=40),
        window=window(0, T0 + timedelta(seconds=30), canary_errors=10, requests=10),
    )
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.CANARY, "CanaryWaiting")
    history = out.status["canary"]["history"]
    assert [h["verdict"] for h in history] == ["Inconclusive"]
    # No predictions were counted: drift is absent, not null (the API server drops nulls).
    assert "psi" not in history[0]["values"]
    assert None not in history[0]["values"].values()


def test_interval_of_another_step_is_not_judged() -> None:
    obs = observe(
        Phase.CANARY,
        status=in_step(1, T0),
        now=T0 + timedelta(seconds=5),
        window=window(0, T0 - timedelta(seconds=10), canary_errors=50),
    )
    out = d.decide(obs)
    assert out.phase == Phase.CANARY
    assert out.status["canary"]["history"] == []


@pytest.mark.parametrize(
    ("kw", "phase"),
    [
        ({"siblings": (d.Sibling("iris-v3", 3, ""),)}, Phase.SUPERSEDED),
        ({"annotations": {s.ANNOTATION_ABORT: "1"}}, Phase.FAILED),
        ({"server": replace(READY, failure="exit code 1")}, Phase.FAILED),
    ],
    ids=["superseded", "aborted", "server-failed"],
)
def test_every_other_exit_from_the_canary_restores_the_stable_route_first(
    kw: dict[str, Any], phase: Phase
) -> None:
    out = d.decide(observe(Phase.CANARY, status=in_step(0, T0), **kw))
    assert out.phase == phase
    assert out.actions[0] == d.Action.RESTORE_STABLE_ROUTE
    assert d.Action.SET_WEIGHT not in out.actions


def test_promote_annotation_skips_the_remaining_steps_without_restoring_the_route() -> None:
    obs = observe(Phase.CANARY, status=in_step(0, T0), annotations={s.ANNOTATION_PROMOTE: "now"})
    out = d.decide(obs)
    assert (out.phase, out.reason) == (Phase.PROMOTING, "ManualPromotion")
    assert out.actions == (d.Action.ENSURE_SERVER,)
    assert out.status["handled"] == {"promote": "now"}
    assert out.event is not None
    assert "canary steps skipped" in out.event.message
    # Acted on once: the same value later changes nothing.
    again = replace(obs, status={**obs.status, "handled": {"promote": "now"}})
    assert d.decide(again).phase == Phase.CANARY


def test_paused_canary_stays_and_touches_nothing() -> None:
    obs = observe(Phase.CANARY, status=in_step(0, T0), annotations={s.ANNOTATION_PAUSED: "true"})
    out = d.decide(obs)
    assert (out.phase, out.actions, out.paused) == (Phase.CANARY, (), True)


def test_invalid_canary_policy_is_reported_before_anything_runs() -> None:
    bad = {"analysis": {"thresholds": {"accuracy": {"max": 1}}}}
    out = d.decide(observe(Phase.PENDING, override=bad))
    assert (out.phase, out.reason) == (Phase.FAILED, "InvalidSpec")
    assert out.phase in REJECTED
    assert "canary: thresholds: unknown metric 'accuracy'" in out.message


def test_version_override_merges_analysis_fields_and_replaces_steps() -> None:
    override = {"steps": [{"weight": 50}], "analysis": {"minRequests": 5}}
    merged = s.merged_canary(CANARY, override)
    assert [st.weight for st in merged.steps] == [50]
    assert (merged.min_requests, merged.interval_seconds) == (5, 10.0)
    assert [th.metric for th in merged.thresholds] == ["errorRate"]


def test_lost_canary_status_restarts_at_the_first_step() -> None:
    out = d.decide(observe(Phase.CANARY, now=T0))
    assert out.phase == Phase.CANARY
    assert out.status["canary"]["step"] == 0
    assert out.actions == (d.Action.SET_WEIGHT,)


def test_last_step_of_100_percent_holds_with_as_many_pods_as_stable_then_promotes() -> None:
    policy = {"steps": [{"weight": 100, "durationSeconds": 0}]}
    out = d.decide(observe(Phase.EVALUATING, job=PASSED_JOB, model=model(policy)))
    canary = out.status["canary"]
    assert (canary["canaryReplicas"], canary["achievedWeight"]) == (4, 50)
    out = d.decide(observe(Phase.CANARY, status={"canary": canary}, model=model(policy)))
    assert (out.phase, out.reason) == (Phase.PROMOTING, "CanaryPassed")
