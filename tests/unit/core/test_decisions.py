"""The rollout state machine, branch by branch and as a whole story in a pure simulated world."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.core import decisions as d
from modelrollout.core import spec as s
from modelrollout.core.spec import Phase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SHA = "a" * 64
GATES = {"metrics": [{"metric": "accuracy", "min": 0.8, "maxRegression": 0.01}]}


def model(replicas: int = 2, keep: int = 30) -> s.ModelSpec:
    return s.ModelSpec(
        name="iris",
        namespace="ns",
        uid="m-uid",
        replicas=replicas,
        evaluation={"dataset": {"uri": "sklearn://iris"}, "gates": GATES},
        keep_previous_seconds=keep,
    )


def version(n: int) -> s.VersionSpec:
    return s.VersionSpec(
        name=f"iris-v{n}",
        namespace="ns",
        uid=f"uid-{n}",
        model="iris",
        version=n,
        artifact=s.Artifact(uri=f"file:///models/iris-{n}.skops", sha256=SHA),
    )


def result(acc: float, base: float | None = None) -> str:
    return json.dumps(
        {
            "form": "compact",
            "rows": 45,
            "candidate": {"accuracy": acc, "f1_macro": acc - 0.01},
            "baseline": None if base is None else {"accuracy": base, "f1_macro": base - 0.01},
            "comparison": {} if base is None else {"accuracy": [acc - base, None, None]},
        }
    )


def observe(n: int, phase: Phase | None, **kw: Any) -> d.Observed:
    status = {"phase": phase.value} if phase else {}
    status.update(kw.pop("status", {}))
    kw.setdefault("model", d.ModelState(spec=model()))
    return d.Observed(version=version(n), now=kw.pop("now", T0), status=status, **kw)


READY = d.ServerState(exists=True, replicas=1, ready_replicas=1)


def test_new_version_deploys_its_server_and_says_so() -> None:
    out = d.decide(observe(1, None))
    assert out.phase == Phase.DEPLOYING
    assert out.actions == (d.Action.ENSURE_SERVER,)
    assert out.event is not None
    assert out.event.type == "Normal"


def test_missing_model_waits_with_a_reason() -> None:
    out = d.decide(observe(1, Phase.PENDING, model=None))
    assert (out.phase, out.reason, out.actions) == (Phase.PENDING, "ModelNotFound", ())


def test_no_dataset_anywhere_fails_with_an_actionable_message() -> None:
    bare = d.ModelState(spec=replace(model(), evaluation={}))
    out = d.decide(observe(1, Phase.PENDING, model=bare))
    assert out.phase == Phase.FAILED
    assert "spec.evaluation.dataset.uri" in out.message


def test_first_version_is_evaluated_without_baseline() -> None:
    out = d.decide(observe(1, Phase.DEPLOYING, server=READY))
    assert out.phase == Phase.EVALUATING
    assert d.Action.ENSURE_JOB in out.actions
    assert out.status["baselineVersion"] is None
    assert "first version" in out.message


def test_candidate_waits_until_ready_then_times_out() -> None:
    waiting = d.ServerState(exists=True, replicas=1, ready_replicas=0)
    since = {"phaseSince": "2026-01-01T00:00:00Z"}
    early = d.decide(observe(1, Phase.DEPLOYING, server=waiting, status=since))
    assert early.phase == Phase.DEPLOYING
    late = d.decide(
        observe(1, Phase.DEPLOYING, server=waiting, status=since, now=T0 + timedelta(hours=1))
    )
    assert (late.phase, late.reason) == (Phase.FAILED, "ServerNotReady")
    assert d.Action.DELETE_SERVER in late.actions


def test_crashing_server_fails_with_its_message() -> None:
    broken = d.ServerState(exists=True, replicas=1, failure="sha256 mismatch: expected aaa")
    out = d.decide(observe(2, Phase.DEPLOYING, server=broken))
    assert (out.phase, out.reason) == (Phase.FAILED, "ServerFailed")
    assert "sha256 mismatch" in out.message
    assert out.event is not None
    assert out.event.type == "Warning"


def test_passing_evaluation_promotes_with_numbers_in_status() -> None:
    job = d.JobState(exists=True, succeeded=True, message=result(0.97, 0.93))
    out = d.decide(observe(2, Phase.EVALUATING, server=READY, job=job))
    assert (out.phase, out.reason) == (Phase.PROMOTING, "EvaluationPassed")
    evaluation = out.status["evaluation"]
    assert evaluation["passed"] is True
    assert evaluation["metrics"]["accuracy"] == pytest.approx(
        {"candidate": 0.97, "baseline": 0.93, "delta": 0.04}
    )
    assert out.status["headline"] == "accuracy=0.9700 (+0.0400)"


def test_regression_fails_the_gate_and_removes_the_candidate() -> None:
    job = d.JobState(exists=True, succeeded=True, message=result(0.85, 0.97))
    out = d.decide(observe(3, Phase.EVALUATING, server=READY, job=job))
    assert (out.phase, out.reason) == (Phase.EVALUATION_FAILED, "GatesFailed")
    assert out.actions == (d.Action.DELETE_SERVER,)
    assert "accuracy" in out.message
    assert "0.12" in out.message
    failed = [g for g in out.status["evaluation"]["gates"] if not g["passed"]]
    assert [g["metric"] for g in failed] == ["accuracy.max_regression"]


def test_crashed_job_and_garbage_result_fail_clearly() -> None:
    crashed = d.JobState(exists=True, failed=True, message="dataset not found: file:///x.csv")
    out = d.decide(observe(2, Phase.EVALUATING, server=READY, job=crashed))
    assert (out.phase, out.reason) == (Phase.FAILED, "EvaluationError")
    assert "file:///x.csv" in out.message
    garbage = d.JobState(exists=True, succeeded=True, message="Traceback ...")
    out = d.decide(observe(2, Phase.EVALUATING, server=READY, job=garbage))
    assert (out.phase, out.reason) == (Phase.FAILED, "BadEvaluationResult")


def test_promotion_switches_only_when_every_replica_is_ready() -> None:
    half = d.ServerState(exists=True, replicas=2, ready_replicas=1)
    out = d.decide(observe(2, Phase.PROMOTING, server=half))
    assert d.Action.SWITCH_STABLE not in out.actions
    assert out.phase == Phase.PROMOTING
    full = d.ServerState(exists=True, replicas=2, ready_replicas=2)
    out = d.decide(observe(2, Phase.PROMOTING, server=full))
    assert out.phase == Phase.STABLE
    assert out.actions[-1] == d.Action.SWITCH_STABLE


def test_previous_stable_stays_warm_then_is_superseded() -> None:
    promoted = d.ModelState(spec=model(keep=30), stable_version=2, promoted_at=T0)
    warm = d.decide(observe(1, Phase.STABLE, model=promoted, now=T0 + timedelta(seconds=10)))
    assert (warm.phase, warm.reason, warm.actions) == (Phase.STABLE, "KeepingWarm", ())
    assert warm.requeue <= 20.5
    done = d.decide(observe(1, Phase.STABLE, model=promoted, now=T0 + timedelta(seconds=31)))
    assert done.phase == Phase.SUPERSEDED
    assert done.actions == (d.Action.SCALE_SERVER_DOWN,)
    assert done.status["supersededBy"] == 2


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.DEPLOYING, Phase.EVALUATING])
def test_newer_version_supersedes_one_in_flight(phase: Phase) -> None:
    sibs = (d.Sibling("iris-v3", 3, ""),)
    out = d.decide(observe(2, phase, siblings=sibs, server=READY))
    assert out.phase == Phase.SUPERSEDED
    assert set(out.actions) == {d.Action.DELETE_JOB, d.Action.DELETE_SERVER}


def test_failed_newer_version_does_not_supersede() -> None:
    sibs = (d.Sibling("iris-v3", 3, Phase.EVALUATION_FAILED.value),)
    out = d.decide(observe(2, Phase.DEPLOYING, siblings=sibs, server=READY))
    assert out.phase == Phase.EVALUATING


def test_version_older_than_stable_is_superseded_at_once() -> None:
    stable5 = d.ModelState(spec=model(), stable_version=5)
    out = d.decide(observe(4, None, model=stable5))
    assert out.phase == Phase.SUPERSEDED


def test_pause_holds_an_in_flight_version() -> None:
    ann = {s.ANNOTATION_PAUSED: "true"}
    out = d.decide(observe(2, Phase.DEPLOYING, server=READY, annotations=ann))
    assert (out.phase, out.reason, out.actions, out.paused) == (
        Phase.DEPLOYING,
        "Paused",
        (),
        True,
    )
    resumed = d.decide(observe(2, Phase.DEPLOYING, server=READY, annotations={}))
    assert resumed.phase == Phase.EVALUATING


def test_abort_acts_once_per_value() -> None:
    ann = {s.ANNOTATION_ABORT: "1"}
    out = d.decide(observe(2, Phase.EVALUATING, server=READY, annotations=ann))
    assert (out.phase, out.reason) == (Phase.FAILED, "Aborted")
    assert out.status == {"handled": {"abort": "1"}}
    again = d.decide(observe(2, Phase.FAILED, annotations=ann, status={"handled": {"abort": "1"}}))
    assert (again.status, again.event, again.actions) == ({}, None, ())


def test_retry_restarts_a_failed_version_with_a_new_attempt() -> None:
    ann = {s.ANNOTATION_RETRY: "2026-01-01T10:00"}
    status = {"attempt": 1, "reason": "GatesFailed"}
    out = d.decide(observe(2, Phase.EVALUATION_FAILED, annotations=ann, status=status))
    assert out.phase == Phase.PENDING
    assert out.status["attempt"] == 2
    assert out.status["evaluation"] is None
    ignored = d.decide(observe(2, Phase.STABLE, annotations=ann))
    assert ignored.phase == Phase.STABLE
    assert ignored.event is not None
    assert ignored.event.reason == "RetryIgnored"


def test_manual_promotion_skips_the_gates_and_is_recorded() -> None:
    ann = {s.ANNOTATION_PROMOTE: "yes"}
    out = d.decide(observe(2, Phase.EVALUATING, server=READY, annotations=ann))
    assert out.status["manualPromotion"] is True
    assert out.event is not None
    assert out.event.reason == "ManualPromotion"
    status = {"manualPromotion": True, "handled": {"promote": "yes"}}
    nxt = d.decide(observe(2, Phase.EVALUATING, server=READY, annotations=ann, status=status))
    assert nxt.phase == Phase.PROMOTING
    full = d.ServerState(exists=True, replicas=2, ready_replicas=2)
    final = d.decide(observe(2, Phase.PROMOTING, server=full, annotations=ann, status=status))
    assert final.phase == Phase.STABLE
    assert "manual" in final.message


def test_stable_deletion_is_held_until_a_successor_serves() -> None:
    serving = d.ModelState(spec=model(), stable_version=1)
    held = d.deletion_hold(observe(1, Phase.STABLE, model=serving))
    assert held is not None
    assert "no successor" in held
    replaced = d.ModelState(spec=model(), stable_version=2)
    assert d.deletion_hold(observe(1, Phase.STABLE, model=replaced)) is None
    assert d.deletion_hold(observe(3, Phase.EVALUATION_FAILED, model=serving)) is None


def test_terminal_phases_tidy_their_children() -> None:
    scaled = d.ServerState(exists=True, replicas=1)
    served = {"promotedAt": "2026-01-01T00:00:00Z"}
    sup = d.decide(observe(1, Phase.SUPERSEDED, server=scaled, status=served))
    assert sup.actions == (d.Action.SCALE_SERVER_DOWN,)
    rej = d.decide(observe(3, Phase.EVALUATION_FAILED, server=scaled))
    assert rej.actions == (d.Action.DELETE_SERVER,)
    assert d.decide(observe(3, Phase.EVALUATION_FAILED)).actions == ()


def test_superseded_version_is_the_candidate_again_when_its_successor_fails() -> None:
    status = {"supersededBy": 3, "attempt": 1}
    failed = (d.Sibling("iris-v3", 3, Phase.EVALUATION_FAILED.value),)
    out = d.decide(observe(2, Phase.SUPERSEDED, siblings=failed, status=status))
    assert (out.phase, out.reason) == (Phase.PENDING, "CandidateAgain")
    assert out.status["attempt"] == 2
    running = (d.Sibling("iris-v3", 3, Phase.EVALUATING.value),)
    assert d.decide(observe(2, Phase.SUPERSEDED, siblings=running, status=status)).phase == (
        Phase.SUPERSEDED
    )
    served = {**status, "promotedAt": "2026-01-01T00:00:00Z"}
    assert d.decide(observe(2, Phase.SUPERSEDED, siblings=failed, status=served)).phase == (
        Phase.SUPERSEDED
    )
