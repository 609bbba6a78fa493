"""Manual control through annotations: abort, retry, promote (once per value) and pause.

Promote skips the evaluation gates before the canary, and the remaining steps during it.

Each action annotation acts once per distinct value; the value acted upon is
recorded in ``status.handled``, so the operator never has to rewrite the
user's metadata (which would make Argo CD see drift).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelrollout.core import spec as s
from modelrollout.core.spec import IN_FLIGHT, REJECTED, Phase
from modelrollout.core.state import Action, Decision, Event, Observed

TRUE_WORDS = frozenset({"true", "yes", "1", "on"})


def paused(obs: Observed) -> bool:
    return obs.annotations.get(s.ANNOTATION_PAUSED, "").strip().lower() in TRUE_WORDS


def _token(obs: Observed, annotation: str, key: str) -> str | None:
    """The annotation's value when it is set and not yet acted upon."""
    value = obs.annotations.get(annotation, "").strip()
    handled = (obs.status.get("handled") or {}).get(key)
    return value if value and value != handled else None


def control(obs: Observed) -> Decision | None:
    """Abort, retry and promote: each acts once per distinct annotation value."""
    for annotation, key, act in (
        (s.ANNOTATION_ABORT, "abort", _abort),
        (s.ANNOTATION_RETRY, "retry", _retry),
        (s.ANNOTATION_PROMOTE, "promote", _promote),
    ):
        if (token := _token(obs, annotation, key)) is not None:
            return act(obs, token, {"handled": {key: token}})
    return None


def _ignored(obs: Observed, what: str, handled: Mapping[str, Any]) -> Decision:
    """Record the annotation as handled without changing anything."""
    phase = obs.phase
    msg = f"{what} ignored in phase {phase.value}"
    return Decision(
        phase,
        str(obs.status.get("reason") or phase.value),
        str(obs.status.get("message") or ""),
        status=handled,
        event=Event("Normal", f"{what.capitalize()}Ignored", msg),
    )


def _abort(obs: Observed, token: str, handled: Mapping[str, Any]) -> Decision:
    if obs.phase not in IN_FLIGHT:
        return _ignored(obs, "abort", handled)
    msg = f"aborted by {s.ANNOTATION_ABORT}={token}"
    actions = (Action.DELETE_JOB, Action.DELETE_SERVER)
    return Decision(Phase.FAILED, "Aborted", msg, actions, handled)


def _retry(obs: Observed, token: str, handled: Mapping[str, Any]) -> Decision:
    if obs.phase not in REJECTED | {Phase.SUPERSEDED}:
        return _ignored(obs, "retry", handled)
    attempt = int(obs.status.get("attempt") or 1) + 1
    status = {
        **handled,
        "attempt": attempt,
        "evaluation": None,
        "headline": None,
        "manualPromotion": None,
        "supersededBy": None,
    }
    msg = f"attempt {attempt} requested by {s.ANNOTATION_RETRY}={token}"
    return Decision(Phase.PENDING, "Retry", msg, (), status, requeue=0.5)


def _promote(obs: Observed, token: str, handled: Mapping[str, Any]) -> Decision:
    phase = obs.phase
    if phase == Phase.CANARY:
        return _skip_canary_steps(token, handled)
    if phase not in {Phase.PENDING, Phase.DEPLOYING, Phase.EVALUATING, Phase.EVALUATION_FAILED}:
        return _ignored(obs, "promote", handled)
    msg = f"manual promotion requested by {s.ANNOTATION_PROMOTE}={token}; gates skipped"
    next_phase = Phase.PENDING if phase == Phase.EVALUATION_FAILED else phase
    status = {**handled, "manualPromotion": True}
    return Decision(
        next_phase,
        "ManualPromotion",
        msg,
        (Action.DELETE_JOB,),
        status,
        requeue=0.5,
        event=Event("Normal", "ManualPromotion", msg),
    )


def _skip_canary_steps(token: str, handled: Mapping[str, Any]) -> Decision:
    """A person ends a passing canary early: the rest of the steps are skipped and the
    version is promoted like a canary that passed (full capacity first, then the switch)."""
    msg = f"canary steps skipped by {s.ANNOTATION_PROMOTE}={token}; promoting"
    return Decision(
        Phase.PROMOTING,
        "ManualPromotion",
        msg,
        (Action.ENSURE_SERVER,),
        {**handled, "manualPromotion": True},
        requeue=0.5,
        event=Event("Normal", "ManualPromotion", msg),
    )
