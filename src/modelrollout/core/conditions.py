"""Ready / Progressing / Degraded conditions and the Model's summary, derived purely.

Argo CD and `kubectl wait` read these; each carries observedGeneration so a
stale status is never mistaken for the answer to the current spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelrollout.core.decisions import Sibling
from modelrollout.core.spec import IN_FLIGHT, REJECTED, Phase


@dataclass(frozen=True)
class Stamp:
    """What every condition of one status write shares."""

    generation: int
    """metadata.generation the status answers."""
    now: str
    """RFC 3339 time of this write."""
    previous: Sequence[Any] = ()
    """The conditions currently in status (to keep lastTransitionTime)."""


def condition(stamp: Stamp, kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    """One condition; lastTransitionTime moves only when its status flips."""
    status = "True" if ok else "False"
    old = next(
        (c for c in stamp.previous if isinstance(c, Mapping) and c.get("type") == kind), None
    )
    since = old.get("lastTransitionTime") if old and old.get("status") == status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason or kind,
        "message": message,
        "observedGeneration": stamp.generation,
        "lastTransitionTime": since or stamp.now,
    }


def version_conditions(
    stamp: Stamp, phase: Phase, reason: str, message: str, paused: bool = False
) -> list[dict[str, Any]]:
    """Conditions of a ModelVersion for the phase it is in."""
    serving = phase == Phase.STABLE
    failed = phase in REJECTED
    moving = phase in IN_FLIGHT and not paused
    progress_reason = reason if phase in IN_FLIGHT else phase.value
    return [
        condition(stamp, "Ready", serving, "Serving" if serving else phase.value, message),
        condition(stamp, "Progressing", moving, progress_reason, message),
        condition(
            stamp,
            "Degraded",
            failed,
            reason if failed else "AsExpected",
            message if failed else "",
        ),
    ]


@dataclass(frozen=True)
class ModelSummary:
    """What a Model's status shows about its versions."""

    phase: str
    message: str
    canary_version: int | None
    degraded: bool
    progressing: bool


def summarize(stable_version: int | None, versions: Iterable[Sibling]) -> ModelSummary:
    """Ready, Progressing (a version in flight, or the stable one baking), Degraded (newest
    version failed) or NoStableVersion."""
    ordered = sorted(versions, key=lambda v: v.version)
    in_flight = [v for v in ordered if v.phase in IN_FLIGHT or not v.phase]
    newest = ordered[-1] if ordered else None
    if in_flight:
        top = in_flight[-1]
        msg = f"version {top.version} is {top.phase or Phase.PENDING.value}"
        return ModelSummary("Progressing", msg, top.version, False, True)
    if newest is not None and newest.phase in REJECTED:
        msg = f"version {newest.version} is {newest.phase}"
        if stable_version is not None:
            msg += f"; version {stable_version} still serves"
        return ModelSummary("Degraded", msg, None, True, False)
    if stable_version is None:
        return ModelSummary("NoStableVersion", "no version serves yet", None, False, False)
    if any(v.baking and v.version == stable_version for v in ordered):
        # Still on probation: a sync wave must not move on while it can be rolled back.
        msg = f"version {stable_version} serves; its bake window is running"
        return ModelSummary("Progressing", msg, None, False, True)
    return ModelSummary("Ready", f"version {stable_version} serves", None, False, False)


def model_conditions(
    stamp: Stamp, summary: ModelSummary, stable_version: int | None
) -> list[dict[str, Any]]:
    """Conditions of a Model: Ready means some version serves user traffic."""
    serving = stable_version is not None
    ready_reason = "Serving" if serving else "NoStableVersion"
    degraded_reason = summary.phase if summary.degraded else "AsExpected"
    return [
        condition(stamp, "Ready", serving, ready_reason, summary.message),
        condition(stamp, "Progressing", summary.progressing, summary.phase, summary.message),
        condition(
            stamp,
            "Degraded",
            summary.degraded,
            degraded_reason,
            summary.message if summary.degraded else "",
        ),
    ]
