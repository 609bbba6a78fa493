"""The bake window after promotion: the new stable version on probation (pure).

A promoted version that replaced another bakes for ``spec.promotion.bakeSeconds``:
its phase is ``Stable`` (reason ``Baking``), the previous stable version stays
warm, and every finished analysis interval of the new version's own traffic is
judged by the canary policy (``canary.judge_interval``) against the previous
version's *baseline*: the stable side of every interval of this version's
canary, summed (``status.canary.stableTotals``), or without a canary its pods'
lifetime counters scraped by the operator at promotion (``Observed.previous_traffic``).
Without a baseline (neither, or too little traffic) only absolute limits apply,
and ``status.bake.baselineNote`` says so. The moves are the canary's
``next_action`` over one step as long as the bake: a failure limit reached →
the previous version serves again and this one is ``RolledBack``
(``BakeFailed``); the bake elapsed with a passing latest interval → ``Baked``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from modelrollout.core import analysis, canary_stage
from modelrollout.core import canary as c
from modelrollout.core import spec as s
from modelrollout.core.spec import Phase
from modelrollout.core.state import Action, Decision, Event, ModelState, Observed, Timing

PASSED = "Passed"
FAILED = "Failed"
CANARY = "canary"
"""Baseline source: the stable side of this version's canary intervals, summed."""
LIFETIME = "lifetime"
"""Baseline source: the previous version's pods' counters since they started (no canary)."""


def seconds(obs: Observed) -> int:
    """The bake length in force for this version (its override, else its Model's)."""
    assert obs.model is not None
    own = obs.version.bake_seconds
    return obs.model.spec.bake_seconds if own is None else own


def _policy(obs: Observed) -> c.CanarySpec:
    """The canary analysis policy, as one step as long as the bake (no thresholds if unusable).

    Without its Prometheus queries: they compare two live versions, and in a bake only
    the new one serves (the built-in thresholds judge it against the recorded baseline).
    """
    try:
        spec = canary_stage.policy(obs)
    except c.CanarySpecError:
        spec = c.CanarySpec()
    return replace(spec, steps=(c.Step(100, float(seconds(obs))),), prometheus=None)


def begin(obs: Observed) -> dict[str, Any] | None:
    """``status.bake`` at promotion, or None when there is nothing to bake against.

    No bake for a first version, a version promoted by hand (a person decided), or
    ``bakeSeconds: 0``.
    """
    assert obs.model is not None
    previous = obs.model.stable_version
    length = seconds(obs)
    if length <= 0 or previous in (None, obs.version.version):
        return None
    if obs.status.get("manualPromotion"):
        return None
    name = next((x.name for x in obs.siblings if x.version == previous), None)
    baseline, note = _baseline(obs)
    return {
        "previousVersion": previous,
        "previousName": name,
        "seconds": length,
        "startedAt": _iso(obs.now),
        "until": _iso(obs.now + timedelta(seconds=length)),
        "baseline": baseline,
        "baselineNote": note,
        "history": [],
        "result": None,
        "rollback": None,
    }


def _baseline(obs: Observed) -> tuple[dict[str, Any] | None, str | None]:
    """The previous version's numbers: summed over this version's canary (same traffic mix,
    same time) or, without a canary, its pods' lifetime counters scraped at promotion."""
    raw = (obs.status.get("canary") or {}).get("stableTotals")
    if raw:
        recorded, source = analysis.window_from_status(raw), CANARY
    elif obs.previous_traffic is not None:
        recorded, source = obs.previous_traffic, LIFETIME
    else:
        msg = (
            "no baseline recorded (no canary, previous version not scraped): "
            "absolute thresholds only"
        )
        return None, msg
    least = _policy(obs).min_requests
    if recorded.requests < least:
        msg = (
            f"baseline ({source}) has {recorded.requests} requests < minRequests {least}: "
            "absolute thresholds only"
        )
        return None, msg
    return {**analysis.window_to_status(recorded), "source": source}, None


def in_progress(status: Any) -> bool:
    """A bake that has no result yet (``status.bake`` of a Stable version)."""
    bake = status.get("bake") if isinstance(status, dict) else None
    return bool(bake) and isinstance(bake, dict) and not bake.get("result")


def step(obs: Observed, timing: Timing) -> Decision:
    """One pass of a running bake: judge the interval that ended, then hold, pass or fail."""
    bake = dict(obs.status["bake"])
    spec = _policy(obs)
    started = _parse(str(bake["startedAt"]))
    history = [c.result_from_status(h) for h in bake.get("history") or ()]
    note = ""
    w = obs.window
    if w is not None and w.start >= started:
        raw = bake.get("baseline")
        baseline = analysis.window_from_status(raw) if raw else None
        result = c.judge_interval(
            spec, 0, start=w.start, end=w.end, stable=baseline, canary=w.canary
        )
        history.append(result)
        note = f" ({w.note})" if w.note else ""
    bake["history"] = [canary_stage.no_nulls(c.result_to_status(r)) for r in c.trimmed(history)]
    action = c.next_action(spec, 0, started, history, obs.now)
    mine = obs.version.version
    if action.kind is c.Kind.PROMOTE:
        msg = f"version {mine} serves; bake of {spec.steps[0].duration_seconds:.0f}s passed"
        bake["result"] = PASSED
        return Decision(
            Phase.STABLE,
            "Baked",
            msg,
            (Action.ENSURE_SERVER,),
            {"bake": bake},
            event=Event("Normal", "Baked", msg),
            requeue=timing.idle,
        )
    if action.kind is c.Kind.ROLLBACK:
        return _failed(obs, bake, action)
    held = (obs.now - started).total_seconds()
    msg = f"version {mine} serves, baking {held:.0f}/{spec.steps[0].duration_seconds:.0f}s"
    if action.kind is c.Kind.INCONCLUSIVE_WAIT:
        msg = f"version {mine} serves; bake elapsed, {_waiting(action.message)}"
    return Decision(
        Phase.STABLE,
        "Baking",
        msg + note,
        (Action.ENSURE_SERVER,),
        {"bake": bake},
        requeue=min(action.requeue, timing.poll),
    )


def _waiting(canary_message: str) -> str:
    """The canary's waiting message without its step prefix."""
    return canary_message.split(": ", 1)[-1]


def _failed(obs: Observed, bake: dict[str, Any], action: c.NextAction) -> Decision:
    """Back to the previous version if it is still warm; otherwise keep serving and say so."""
    previous = int(bake["previousVersion"])
    mine = obs.version.version
    why = action.message
    if action.failed is None or action.failed.breach is None:
        why = "no conclusive passing interval after the bake (minRequests not reached)"
    report = canary_stage.rollback_report(action, obs.now, why)
    bake.update(result=FAILED, rollback=report)
    warm = any(x.version == previous and x.phase == Phase.STABLE for x in obs.siblings)
    if not warm:
        msg = f"bake failed ({why}) but version {previous} is no longer warm: version {mine} stays"
        return Decision(
            Phase.STABLE,
            "BakeFailedNoPrevious",
            msg,
            (Action.ENSURE_SERVER,),
            {"bake": bake},
            event=Event("Warning", "BakeFailedNoPrevious", msg),
        )
    msg = f"bake failed, rolled back to version {previous}: {why}"
    return Decision(
        Phase.ROLLED_BACK,
        "BakeFailed",
        msg,
        (Action.RESTORE_PREVIOUS_STABLE, Action.SCALE_SERVER_DOWN),
        {"bake": bake},
        event=Event("Warning", "BakeFailed", msg),
    )


def keeps_previous_warm(obs: Observed) -> str | None:
    """Why the previous stable version (this one) must stay warm now, or None.

    While the new stable version bakes (its sibling says so), and at least
    ``max(keepPreviousSeconds, bakeSeconds)`` after the switch: that covers the
    moment before the new version's own status shows the bake.
    """
    model = obs.model
    assert model is not None
    assert model.stable_version is not None
    new = model.stable_version
    if any(x.version == new and x.baking for x in obs.siblings):
        return f"until version {new}'s bake ends"
    since = (obs.now - (model.promoted_at or obs.now)).total_seconds()
    keep = keep_seconds(model)
    if since < keep:
        return f"for {keep - since:.0f}s more"
    return None


def keep_seconds(model: ModelState) -> int:
    """How long after a switch the previous version stays warm at least."""
    return max(model.spec.keep_previous_seconds, model.spec.bake_seconds)


def blocking(obs: Observed, canary: bool) -> str | None:
    """Why a candidate that passed its evaluation must wait before moving on, or None.

    A baking stable version finishes its bake first (a candidate promoted meanwhile would
    end the probation unjudged). A canary also waits for a previous stable version that is
    still warm: the ``replicas`` router's open Service selector would send it canary traffic
    (a route router names the two Services it splits between, so it does not wait).
    """
    baking = [x.version for x in obs.siblings if x.baking]
    if baking:
        return f"version {baking[0]} is baking"
    model = obs.model
    if model is None or model.spec.traffic.router != s.Router.REPLICAS:
        return None
    warm = [
        x.version
        for x in obs.siblings
        if x.phase == Phase.STABLE and x.version != model.stable_version
    ]
    if canary and warm:
        return f"previous version {warm[0]} is still warm (it would receive canary traffic)"
    return None


def _parse(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
