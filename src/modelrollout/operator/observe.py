"""Read children (plain API dicts) into the core's observed state. Pure: no API calls here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from modelrollout import exitcodes
from modelrollout.core.spec import ModelSpec
from modelrollout.core.state import JobState, ModelState, ServerState, Sibling

PERMANENT_WAITING = frozenset(
    {"InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull"}
)
"""Container waiting reasons that never resolve by themselves."""


def server_state(
    deployment: Mapping[str, Any] | None, pods: Iterable[Mapping[str, Any]], restart_limit: int
) -> ServerState:
    """Deployment readiness plus the first reason its pods cannot run, if any."""
    if deployment is None:
        return ServerState()
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return ServerState(
        exists=True,
        replicas=int(spec.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        failure=_deployment_failure(status) or _pod_failure(pods, restart_limit),
    )


def _deployment_failure(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("message") or "progress deadline exceeded")
    return None


def _pod_failure(pods: Iterable[Mapping[str, Any]], restart_limit: int) -> str | None:
    """A bad artifact exits with BAD_INPUT at once: fail fast; other crashes after N restarts."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            waiting = state.get("waiting") or {}
            if waiting.get("reason") in PERMANENT_WAITING:
                return f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip()
            terminated = state.get("terminated") or last.get("terminated")
            if not terminated or terminated.get("exitCode") == 0:
                continue
            code = terminated.get("exitCode")
            detail = (terminated.get("message") or terminated.get("reason") or "").strip()
            if code == exitcodes.BAD_INPUT or int(cs.get("restartCount") or 0) >= restart_limit:
                return f"exit code {code}: {detail}" if detail else f"exit code {code}"
    return None


def job_state(job: Mapping[str, Any] | None, pods: Iterable[Mapping[str, Any]]) -> JobState:
    """Whether the Job finished, and its container's termination message."""
    if job is None:
        return JobState()
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    succeeded = bool(status.get("succeeded")) or "Complete" in conditions
    failed = not succeeded and (bool(status.get("failed")) or "Failed" in conditions)
    message = _termination_message(pods)
    if failed and not message and "Failed" in conditions:
        cond = conditions["Failed"]
        message = f"{cond.get('reason')}: {cond.get('message') or ''}".strip()
    return JobState(exists=True, succeeded=succeeded, failed=failed, message=message)


def _termination_message(pods: Iterable[Mapping[str, Any]]) -> str | None:
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"]).strip()
    return None


def model_state(body: Mapping[str, Any] | None, spec: ModelSpec | None) -> ModelState | None:
    """The parent Model as the state machine sees it."""
    if body is None or spec is None:
        return None
    status = body.get("status") or {}
    promoted = status.get("promotedAt")
    return ModelState(
        spec=spec,
        stable_version=status.get("stableVersion"),
        promoted_at=datetime.fromisoformat(promoted.replace("Z", "+00:00")) if promoted else None,
    )


def sibling(body: Mapping[str, Any]) -> Sibling:
    """What the index keeps of every ModelVersion: enough to apply the candidate rule."""
    return Sibling(
        name=str(body["metadata"]["name"]),
        version=int((body.get("spec") or {}).get("version") or 0),
        phase=str((body.get("status") or {}).get("phase") or ""),
        weight=_weight(body.get("status") or {}),
        revivable=_revivable(body.get("status") or {}),
        baking=_baking(body.get("status") or {}),
    )


def _baking(status: Mapping[str, Any]) -> bool:
    bake = status.get("bake") or {}
    return status.get("phase") == "Stable" and bool(bake) and not bake.get("result")


def _revivable(status: Mapping[str, Any]) -> bool:
    return status.get("phase") == "Superseded" and not status.get("promotedAt")


def _weight(status: Mapping[str, Any]) -> int:
    if status.get("phase") != "Canary":
        return 0
    return int((status.get("canary") or {}).get("achievedWeight") or 0)
