"""The pod status the agent reports, built from what it knows of each container (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


def now() -> str:
    """The current time in the API's RFC 3339 format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """What the agent knows of one container (init or regular)."""

    name: str
    image: str
    state: str = "waiting"
    """``waiting``, ``running`` or ``terminated``."""
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_count: int = 0
    ready: bool = False
    pid: int = 0
    last_terminated: JSON = field(default_factory=dict)

    def waiting(self, reason: str, message: str = "") -> None:
        self.state, self.reason, self.message, self.ready = "waiting", reason, message, False

    def running(self, pid: int) -> None:
        self.state, self.reason, self.message = "running", "", ""
        self.started_at, self.pid, self.ready = now(), pid, False

    def terminated(self, exit_code: int, message: str) -> None:
        self.state, self.exit_code, self.message, self.ready = (
            "terminated",
            exit_code,
            message,
            False,
        )
        self.reason = "Completed" if exit_code == 0 else "Error"
        self.finished_at = now()

    def state_json(self) -> JSON:
        if self.state == "running":
            return {"running": {"startedAt": self.started_at}}
        if self.state == "terminated":
            return {"terminated": self.terminated_json()}
        waiting: JSON = {"reason": self.reason}
        if self.message:
            waiting["message"] = self.message
        return {"waiting": waiting}

    def terminated_json(self) -> JSON:
        out: JSON = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at or None,
            "finishedAt": self.finished_at,
            "containerID": f"modelrollout://{self.pid}",
        }
        if self.message:
            out["message"] = self.message
        return out

    def status_json(self) -> JSON:
        out: JSON = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.state == "running",
            "restartCount": self.restart_count,
            "state": self.state_json(),
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.pid:
            out["containerID"] = f"modelrollout://{self.pid}"
        return out


def will_restart(policy: str, exit_code: int) -> bool:
    """Whether restartPolicy restarts a container that exited with exit_code."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def pod_phase(
    policy: str, init: list[ContainerRecord], containers: list[ContainerRecord], init_failed: bool
) -> str:
    """Kubernetes' pod phase from the containers' states and the restart policy."""
    if init_failed:
        return "Failed"
    if any(c.state != "terminated" or c.exit_code != 0 for c in init):
        return "Pending"
    if any(c.state == "running" for c in containers):
        return "Running"
    if containers and all(c.state == "terminated" for c in containers):
        if any(will_restart(policy, c.exit_code) for c in containers):
            return "Running"
        return "Succeeded" if all(c.exit_code == 0 for c in containers) else "Failed"
    ever_started = any(c.restart_count > 0 or c.state == "terminated" for c in containers)
    return "Running" if ever_started else "Pending"


def conditions(previous: list[JSON], values: dict[str, tuple[bool, str]]) -> list[JSON]:
    """Pod conditions, keeping lastTransitionTime of those whose status did not change."""
    before = {c.get("type"): c for c in previous}
    out: list[JSON] = []
    for kind, (ok, reason) in values.items():
        status = "True" if ok else "False"
        old = before.get(kind)
        kept = old.get("lastTransitionTime") if old and old.get("status") == status else None
        cond: JSON = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": kept or now(),
        }
        if reason and not ok:
            cond["reason"] = reason
        out.append(cond)
    return out


def pod_status(
    *,
    phase: str,
    pod_ip: str,
    host_ip: str,
    start_time: str,
    init: list[ContainerRecord],
    containers: list[ContainerRecord],
    previous_conditions: list[JSON],
    message: str = "",
) -> JSON:
    """The full status object written to ``pods/status``."""
    initialized = all(c.state == "terminated" and c.exit_code == 0 for c in init)
    all_ready = bool(containers) and all(c.ready for c in containers)
    terminal = phase in ("Succeeded", "Failed")
    not_ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    values = {
        "PodScheduled": (True, ""),
        "Initialized": (initialized, "ContainersNotInitialized"),
        "ContainersReady": (all_ready and not terminal, not_ready_reason),
        "Ready": (all_ready and not terminal, not_ready_reason),
    }
    status: JSON = {
        "phase": phase,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "conditions": conditions(previous_conditions, values),
        "initContainerStatuses": [c.status_json() for c in init],
        "containerStatuses": [c.status_json() for c in containers],
    }
    if message:
        status["message"] = message
    return status
