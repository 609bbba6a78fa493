"""The Canary phase of the state machine: start, hold, advance, promote or roll back.

Pure like ``decisions``: the operator scrapes both versions' pods and hands the
finished interval in as ``Observed.window``; here it is judged
(``canary.judge_interval``), appended to ``status.canary.history`` and
``canary.next_action`` picks the move. The ``replicas`` router keeps the
stable version at full capacity and adds canary pods behind the stable
Service, so the weight is the canary's share of the pods; the gateway-api and
istio routers write the exact weight into a route and the canary gets only the
pods that share needs (``routes.canary_replicas``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelrollout.core import canary as c
from modelrollout.core import routes
from modelrollout.core import spec as s
from modelrollout.core.spec import Phase
from modelrollout.core.state import Action, Decision, Event, Observed, Timing


def policy(obs: Observed) -> c.CanarySpec:
    """The merged canary policy of this version (validated when the version was Pending)."""
    assert obs.model is not None
    return s.merged_canary(obs.model.spec.canary, obs.version.canary)


def wanted(obs: Observed) -> bool:
    """A canary runs when there are steps and a stable version to compare with."""
    if obs.model is None or obs.model.stable_version in (None, obs.version.version):
        return False
    try:
        return bool(policy(obs).steps)
    except c.CanarySpecError:  # the Model changed since Pending: no canary without a policy
        return False


def _step_status(obs: Observed, spec: c.CanarySpec, step: int) -> dict[str, Any]:
    assert obs.model is not None
    stable = obs.model.spec.replicas
    weight = spec.steps[step].weight
    traffic = obs.model.spec.traffic
    if traffic.router is not s.Router.REPLICAS:  # exact weights: pods only for the capacity
        replicas = routes.canary_replicas(stable, weight, traffic.max_canary_replicas)
        split = c.ReplicaSplit(replicas, float(weight))
    elif weight == 100:  # not reachable by replicas: the last hold runs with as many pods as stable
        pods = min(stable, traffic.max_canary_replicas or stable)
        split = c.ReplicaSplit(pods, 100.0 * pods / (stable + pods))
    else:
        split = c.replica_split(stable, weight, traffic.max_canary_replicas or stable)
    return {
        "step": step,
        "steps": len(spec.steps),
        "weight": weight,
        "achievedWeight": round(split.achieved_weight),
        "canaryReplicas": split.canary_replicas,
        "stableReplicas": stable,
        "stepStartedAt": _iso(obs.now),
    }


def start(obs: Observed, status: dict[str, Any], summary: str) -> Decision:
    """The evaluation passed: open step 1 (route both versions, scale the canary)."""
    spec = policy(obs)
    canary = {**_step_status(obs, spec, 0), "startedAt": _iso(obs.now), "history": []}
    canary["rollback"] = None
    msg = f"{summary}; canary step 1/{len(spec.steps)}: {spec.steps[0].weight}%"
    return Decision(
        Phase.CANARY,
        "CanaryStarted",
        msg,
        (Action.SET_WEIGHT,),
        {**status, "canary": canary},
        requeue=0.5,
    )


def step(obs: Observed, timing: Timing) -> Decision:
    """One pass of the Canary phase (superseding and server failure are handled by the caller)."""
    try:
        spec = policy(obs)
    except c.CanarySpecError as err:  # the Model changed: hold the weight until it is fixed
        msg = f"canary policy unusable, holding the current weight: {err}"
        return Decision(Phase.CANARY, "InvalidSpec", msg, (Action.SET_WEIGHT,), requeue=timing.idle)
    current = dict(obs.status.get("canary") or {})
    if not spec.steps:  # the policy was emptied during the canary
        msg = "no canary steps in force; promoting"
        return Decision(Phase.PROMOTING, "CanaryPassed", msg, (Action.ENSURE_SERVER,), requeue=0.5)
    if "step" not in current or "stepStartedAt" not in current:  # lost status: restart at step 1
        return start(obs, {}, "canary status missing")
    return _judge_and_move(obs, timing, spec, current)


def _judge_and_move(
    obs: Observed, timing: Timing, spec: c.CanarySpec, current: dict[str, Any]
) -> Decision:
    """Judge the interval that just ended (if any), then map ``next_action`` to a decision."""
    index = min(int(current["step"]), len(spec.steps) - 1)  # steps may have been shortened
    started = _parse(str(current["stepStartedAt"]))
    history = [c.result_from_status(h) for h in current.get("history") or ()]
    note = ""
    if obs.window is not None and obs.window.step == index and obs.window.start >= started:
        w = obs.window
        result = c.judge_interval(
            spec,
            index,
            start=w.start,
            end=w.end,
            stable=w.stable,
            canary=w.canary,
            prometheus=w.prometheus,
        )
        history.append(result)
        note = f" ({w.note})" if w.note else ""
    current["history"] = [_no_nulls(c.result_to_status(r)) for r in c.trimmed(history)]
    action = c.next_action(spec, index, started, history, obs.now)
    if action.kind in (c.Kind.HOLD, c.Kind.INCONCLUSIVE_WAIT):
        reason = "CanaryStep" if action.kind is c.Kind.HOLD else "CanaryWaiting"
        return Decision(
            Phase.CANARY,
            reason,
            action.message + note,
            (Action.SET_WEIGHT,),
            {"canary": current},
            requeue=min(action.requeue, timing.poll),
        )
    if action.kind is c.Kind.ADVANCE:
        assert action.step is not None
        current.update(_step_status(obs, spec, action.step))
        msg = f"canary {action.message}"
        return Decision(
            Phase.CANARY,
            "CanaryAdvanced",
            msg,
            (Action.SET_WEIGHT,),
            {"canary": current},
            event=Event("Normal", "CanaryAdvanced", msg),
            requeue=timing.poll,
        )
    if action.kind is c.Kind.PROMOTE:
        return Decision(
            Phase.PROMOTING,
            "CanaryPassed",
            f"canary passed: {action.message}",
            (Action.ENSURE_SERVER,),
            {"canary": current},
            requeue=0.5,
        )
    return _rollback(obs, current, action)


def _rollback(obs: Observed, current: dict[str, Any], action: c.NextAction) -> Decision:
    """Traffic back to 100% stable first, then the canary scaled to zero."""
    report: dict[str, Any] = {"message": action.message, "at": _iso(obs.now)}
    failed = action.failed
    if failed is not None:
        report["intervalStart"] = failed.start.isoformat()
        report["intervalEnd"] = failed.end.isoformat()
        if failed.breach is not None:
            b = c.result_to_status(failed)["breach"]
            report.update({k: b[k] for k in ("metric", "value", "threshold", "kind", "stable")})
    current.update({"weight": 0, "achievedWeight": 0, "canaryReplicas": 0, "rollback": report})
    stable = obs.model.stable_version if obs.model else None
    msg = f"canary rolled back to version {stable}: {action.message}"
    return Decision(
        Phase.ROLLED_BACK,
        "CanaryFailed",
        msg,
        (Action.RESTORE_STABLE_ROUTE, Action.SCALE_SERVER_DOWN),
        {"canary": current},
        event=Event("Warning", "CanaryFailed", msg),
    )


def leaving(obs: Observed, decision: Decision) -> Decision:
    """Any exit from Canary other than promotion takes the traffic back to stable first."""
    if obs.phase != Phase.CANARY or decision.phase in (Phase.CANARY, Phase.PROMOTING):
        return decision
    if Action.RESTORE_STABLE_ROUTE in decision.actions:
        return decision
    actions = (Action.RESTORE_STABLE_ROUTE, *decision.actions)
    return Decision(
        decision.phase,
        decision.reason,
        decision.message,
        actions,
        decision.status,
        decision.event,
        decision.requeue,
        decision.paused,
    )


def _no_nulls(entry: dict[str, Any]) -> dict[str, Any]:
    """The API server drops nulls in preserved fields: leave them out (absent = not measured)."""
    return {
        k: _no_nulls(v) if isinstance(v, dict) else v for k, v in entry.items() if v is not None
    }


def _parse(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
