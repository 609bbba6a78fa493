"""The rollout state machine of a ModelVersion: observed state in, decision out.

Pure on purpose: every input (the version, its Model, its siblings, its
children, the clock) is passed in, so a killed operator that observes the same
world decides the same thing, and every branch is unit-tested without a cluster.
The operator executes ``Decision.actions`` (all idempotent) and then writes the
phase and status; see docs/resources.md for the graph.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from modelrollout.core import bake, canary_stage
from modelrollout.core import spec as s
from modelrollout.core.controls import control, paused
from modelrollout.core.spec import IN_FLIGHT, REJECTED, Phase
from modelrollout.core.state import (
    Action,
    Decision,
    Event,
    JobState,
    ModelState,
    Observed,
    ServerState,
    Sibling,
    Timing,
)
from modelrollout.core.verdict import judge

__all__ = [
    "Action",
    "Decision",
    "Event",
    "JobState",
    "ModelState",
    "Observed",
    "ServerState",
    "Sibling",
    "Timing",
    "decide",
    "deletion_hold",
    "superseded_by",
]


DEFAULT_TIMING = Timing()


def decide(obs: Observed, timing: Timing = DEFAULT_TIMING) -> Decision:
    """The single entry point: control annotations first, then the phase's own step."""
    return canary_stage.leaving(obs, _decide(obs, timing))


def _decide(obs: Observed, timing: Timing) -> Decision:
    control_decision = control(obs)
    if control_decision is not None:
        return _with_event(obs, control_decision)
    phase = obs.phase
    if phase in IN_FLIGHT and paused(obs):
        msg = f"paused by {s.ANNOTATION_PAUSED}"
        return _with_event(obs, Decision(phase, "Paused", msg, paused=True))
    if phase in IN_FLIGHT and obs.model is None:
        msg = f"Model {obs.version.model!r} not found in namespace {obs.version.namespace!r}"
        return _with_event(obs, Decision(phase, "ModelNotFound", msg, requeue=timing.idle))
    step = {
        Phase.PENDING: _pending,
        Phase.DEPLOYING: _deploying,
        Phase.EVALUATING: _evaluating,
        Phase.CANARY: _canary,
        Phase.PROMOTING: _promoting,
        Phase.STABLE: _stable,
    }.get(phase, _settled)
    return _with_event(obs, step(obs, timing))


def _with_event(obs: Observed, decision: Decision) -> Decision:
    """Every phase change is recorded as an Event (Warning when the version failed)."""
    if decision.event is not None or (decision.phase == obs.phase and obs.status.get("phase")):
        return decision
    kind = "Warning" if decision.phase in REJECTED else "Normal"
    return replace(decision, event=Event(kind, decision.reason, decision.message))


def superseded_by(obs: Observed) -> int | None:
    """The candidate rule: a higher version that has not failed, or a newer stable one.

    A higher version superseded in flight that never served still counts: it revives
    before any lower version may start (see ``candidate_again``).
    """
    mine = obs.version.version
    higher = [
        sib.version
        for sib in obs.siblings
        if sib.version > mine and (sib.phase not in REJECTED | {Phase.SUPERSEDED} or sib.revivable)
    ]
    stable = obs.model.stable_version if obs.model else None
    if stable is not None and stable >= mine and obs.phase != Phase.STABLE:
        higher.append(stable)
    return max(higher) if higher else None


def _supersede(obs: Observed, by: int) -> Decision:
    actions = (Action.DELETE_JOB, Action.DELETE_SERVER)
    msg = f"version {by} of model {obs.version.model} replaces version {obs.version.version}"
    return Decision(Phase.SUPERSEDED, "Superseded", msg, actions, {"supersededBy": by})


def _pending(obs: Observed, timing: Timing) -> Decision:
    assert obs.model is not None
    if (by := superseded_by(obs)) is not None:
        return _supersede(obs, by)
    evaluation = s.merged_evaluation(obs.model.spec.evaluation, obs.version.evaluation)
    errors = s.semantic_errors(obs.version, evaluation, obs.model.spec.canary)
    if errors and not obs.status.get("manualPromotion"):
        return Decision(Phase.FAILED, "InvalidSpec", "; ".join(errors), (Action.DELETE_SERVER,))
    msg = f"deploying the candidate model server for version {obs.version.version}"
    return Decision(
        Phase.DEPLOYING,
        "Deploying",
        msg,
        (Action.ENSURE_SERVER,),
        {"attempt": int(obs.status.get("attempt") or 1)},
        requeue=timing.poll,
    )


def _since(obs: Observed) -> float:
    raw = obs.status.get("phaseSince")
    if not raw:
        return 0.0
    return (obs.now - datetime.fromisoformat(str(raw).replace("Z", "+00:00"))).total_seconds()


def _server_failed(obs: Observed) -> Decision:
    msg = f"model server of version {obs.version.version} cannot start: {obs.server.failure}"
    return Decision(Phase.FAILED, "ServerFailed", msg, (Action.DELETE_JOB, Action.DELETE_SERVER))


def _deploying(obs: Observed, timing: Timing) -> Decision:
    assert obs.model is not None
    if (by := superseded_by(obs)) is not None:
        return _supersede(obs, by)
    if obs.server.failure:
        return _server_failed(obs)
    if obs.server.exists and obs.server.ready_replicas >= max(1, obs.server.replicas):
        if obs.status.get("manualPromotion"):
            return Decision(
                Phase.PROMOTING,
                "ManualPromotion",
                "candidate ready; promoting without evaluation (manual)",
                (Action.ENSURE_SERVER,),
                requeue=0.5,
            )
        baseline = obs.model.stable_version
        msg = f"evaluating version {obs.version.version}" + (
            f" against stable version {baseline}"
            if baseline
            else " on absolute gates (first version)"
        )
        return Decision(
            Phase.EVALUATING,
            "Evaluating",
            msg,
            (Action.ENSURE_SERVER, Action.ENSURE_JOB),
            {"baselineVersion": baseline},
            requeue=timing.poll,
        )
    if _since(obs) > timing.deploy_timeout:
        msg = f"model server not ready after {timing.deploy_timeout:.0f}s"
        return Decision(Phase.FAILED, "ServerNotReady", msg, (Action.DELETE_SERVER,))
    return Decision(
        Phase.DEPLOYING,
        "Deploying",
        str(obs.status.get("message") or "waiting for the candidate model server"),
        (Action.ENSURE_SERVER,),
        requeue=timing.poll,
    )


def _evaluating(obs: Observed, timing: Timing) -> Decision:
    assert obs.model is not None
    if (by := superseded_by(obs)) is not None:
        return _supersede(obs, by)
    if obs.server.failure:
        return _server_failed(obs)
    if obs.status.get("manualPromotion"):
        return Decision(
            Phase.PROMOTING,
            "ManualPromotion",
            "gates skipped (manual promotion)",
            (Action.DELETE_JOB, Action.ENSURE_SERVER),
            requeue=0.5,
        )
    job = obs.job
    if job.failed:
        msg = f"evaluation Job failed: {job.message or 'no termination message'}"
        return Decision(Phase.FAILED, "EvaluationError", msg, (Action.DELETE_SERVER,))
    if not job.succeeded:
        ready = obs.server.exists and obs.server.ready_replicas >= 1
        actions = (
            (Action.ENSURE_SERVER, Action.ENSURE_JOB)
            if ready or job.exists
            else (Action.ENSURE_SERVER,)
        )
        msg = str(obs.status.get("message") or "evaluation running")
        return Decision(Phase.EVALUATING, "Evaluating", msg, actions, requeue=timing.poll)
    return _judged(obs)


def _judged(obs: Observed) -> Decision:
    """The Job succeeded: re-apply the gates to the numbers it reported."""
    assert obs.model is not None
    evaluation = s.merged_evaluation(obs.model.spec.evaluation, obs.version.evaluation)
    verdict = judge(obs.job.message, evaluation.gates)
    if verdict.error:
        return Decision(Phase.FAILED, "BadEvaluationResult", verdict.error, (Action.DELETE_SERVER,))
    completed = (obs.status.get("evaluation") or {}).get("completedAt") or _iso(obs.now)
    status = {
        "evaluation": {**verdict.status, "completedAt": completed},
        "headline": verdict.headline,
    }
    if verdict.passed and (why := bake.blocking(obs, canary_stage.wanted(obs))):
        msg = f"{verdict.summary}; waiting: {why}"
        return Decision(
            Phase.EVALUATING, "WaitingForStable", msg, (Action.ENSURE_SERVER,), status, requeue=1.0
        )
    if verdict.passed and canary_stage.wanted(obs):
        return canary_stage.start(obs, status, verdict.summary)
    if verdict.passed:
        return Decision(
            Phase.PROMOTING,
            "EvaluationPassed",
            verdict.summary,
            (Action.ENSURE_SERVER,),
            status,
            requeue=0.5,
        )
    return Decision(
        Phase.EVALUATION_FAILED, "GatesFailed", verdict.summary, (Action.DELETE_SERVER,), status
    )


def _canary(obs: Observed, timing: Timing) -> Decision:
    """Traffic steps with analysis; superseding or a failing server end it like elsewhere."""
    if (by := superseded_by(obs)) is not None:
        return _supersede(obs, by)
    if obs.server.failure:
        return _server_failed(obs)
    return canary_stage.step(obs, timing)


def _promoting(obs: Observed, timing: Timing) -> Decision:
    """Scale to full capacity, then switch the stable Service once every replica is ready."""
    assert obs.model is not None
    if obs.server.failure:
        return _server_failed(obs)
    want = obs.model.spec.replicas
    if not (
        obs.server.exists and obs.server.replicas >= want and obs.server.ready_replicas >= want
    ):
        msg = f"scaling to {want} replicas before switching traffic"
        return Decision(
            Phase.PROMOTING, "ScalingUp", msg, (Action.ENSURE_SERVER,), requeue=timing.poll
        )
    manual = bool(obs.status.get("manualPromotion"))
    previous = obs.model.stable_version
    msg = (
        f"version {obs.version.version} serves model {obs.version.model}"
        + (
            f" (replaces version {previous})"
            if previous and previous != obs.version.version
            else ""
        )
        + (" [manual promotion]" if manual else "")
    )
    baking = bake.begin(obs)
    if baking is not None:
        msg += f"; baking for {baking['seconds']}s against version {previous}"
    return Decision(
        Phase.STABLE,
        "Promoted",
        msg,
        (Action.ENSURE_SERVER, Action.SWITCH_STABLE),
        {"promotedAt": _iso(obs.now), "bake": baking},
        requeue=timing.poll if baking else timing.idle,
    )


def _stable(obs: Observed, timing: Timing) -> Decision:
    """Serve; once another version is stable, wait out the keep-previous delay, then scale down."""
    model = obs.model
    mine = obs.version.version
    if model is not None and model.stable_version == mine and bake.in_progress(obs.status):
        return bake.step(obs, timing)
    if model is None or model.stable_version == mine:
        return _serving(obs, timing)
    if model.stable_version is None:
        stable_siblings = [x.version for x in obs.siblings if x.phase == Phase.STABLE]
        ready = obs.server.exists and obs.server.ready_replicas >= max(1, obs.server.replicas)
        if ready and all(v < mine for v in stable_siblings):
            return Decision(
                Phase.STABLE,
                "Serving",
                f"version {mine} serves (stable restored)",
                (Action.ENSURE_SERVER, Action.SWITCH_STABLE),
                requeue=timing.idle,
            )
    new = model.stable_version
    if new is None:
        return Decision(Phase.STABLE, "Serving", f"version {mine} serves", requeue=timing.idle)
    why = bake.keeps_previous_warm(obs)
    if why is not None:
        msg = f"version {new} serves; keeping version {mine} warm {why}"
        until = (model.promoted_at or obs.now) + timedelta(seconds=bake.keep_seconds(model))
        left = max(until - obs.now, timedelta(0))  # 0: kept for the successor's bake
        return Decision(
            Phase.STABLE,
            "KeepingWarm",
            msg,
            requeue=min(timing.idle, left.total_seconds() + 0.5) if left else timing.idle,
        )
    msg = f"version {new} of model {obs.version.model} replaces version {mine}"
    return Decision(
        Phase.SUPERSEDED, "Superseded", msg, (Action.SCALE_SERVER_DOWN,), {"supersededBy": new}
    )


def _serving(obs: Observed, timing: Timing) -> Decision:
    """The stable version serves; a finished bake's verdict stays in reason and message."""
    mine = obs.version.version
    reason, msg = "Serving", f"version {mine} serves"
    if obs.status.get("reason") in ("Baked", "BakeFailedNoPrevious"):
        reason, msg = str(obs.status["reason"]), str(obs.status.get("message") or msg)
    actions = (Action.ENSURE_SERVER,) if obs.model else ()
    return Decision(Phase.STABLE, reason, msg, actions, requeue=timing.idle)


def _settled(obs: Observed, timing: Timing) -> Decision:
    """Terminal phases: keep children tidy, otherwise wait for a control annotation."""
    phase = obs.phase
    if phase == Phase.SUPERSEDED and candidate_again(obs):
        msg = (
            f"version {obs.status.get('supersededBy')} failed; version {obs.version.version} "
            "is the highest that has not failed and becomes the candidate again"
        )
        status = {
            "attempt": int(obs.status.get("attempt") or 1) + 1,
            "supersededBy": None,
            "evaluation": None,
            "headline": None,
        }
        return Decision(Phase.PENDING, "CandidateAgain", msg, (), status, requeue=0.5)
    actions: tuple[Action, ...] = ()
    if phase == Phase.SUPERSEDED and obs.server.exists and obs.server.replicas > 0:
        actions = (Action.SCALE_SERVER_DOWN,)
    elif phase in REJECTED and obs.server.exists:
        actions = (Action.DELETE_SERVER,)
    reason = str(obs.status.get("reason") or phase.value)
    return Decision(
        phase, reason, str(obs.status.get("message") or ""), actions, requeue=timing.idle
    )


def candidate_again(obs: Observed) -> bool:
    """A version superseded in flight is the candidate again once everything above it failed.

    Higher superseded versions block it too: the highest of them revives first. A version
    that once served stays down (bringing back an old stable version is a rollback).
    """
    if obs.model is None or obs.status.get("promotedAt"):
        return False
    mine = obs.version.version
    stable = obs.model.stable_version
    if stable is not None and stable >= mine:
        return False
    return not any(s.version > mine and s.phase not in REJECTED for s in obs.siblings)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def deletion_hold(obs: Observed) -> str | None:
    """Why deleting this version must wait (it serves and nothing replaces it), or None."""
    if obs.phase != Phase.STABLE or obs.model is None:
        return None
    stable = obs.model.stable_version
    if stable is not None and stable != obs.version.version:
        return None
    return (
        f"version {obs.version.version} still serves model {obs.version.model} and no successor "
        "is stable; deletion waits until another version is promoted"
    )
