"""Inputs and outputs of the rollout state machine (plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelrollout.core import spec as s
from modelrollout.core.analysis import Window
from modelrollout.core.prometheus import PrometheusResults
from modelrollout.core.spec import Phase


class Action(StrEnum):
    """Idempotent operations the operator performs for a decision, in order."""

    ENSURE_SERVER = "EnsureServer"
    """Create the version's Deployment and Service (or set its replicas)."""
    SCALE_SERVER_DOWN = "ScaleServerDown"
    """Keep the Deployment but at zero replicas (a superseded stable version)."""
    DELETE_SERVER = "DeleteServer"
    """Remove the version's Deployment and Service."""
    ENSURE_JOB = "EnsureJob"
    """Create the evaluation Job of the current attempt."""
    DELETE_JOB = "DeleteJob"
    """Remove the evaluation Job of the current attempt."""
    SWITCH_STABLE = "SwitchStable"
    """Point the Model's stable Service at this version and record it in the Model's status."""
    SET_WEIGHT = "SetWeight"
    """Canary (``replicas`` router): scale this version to ``status.canary.canaryReplicas``
    and let the stable Service select both versions' pods."""
    RESTORE_STABLE_ROUTE = "RestoreStableRoute"
    """Point the stable Service back at the stable version only (first step of a rollback)."""


@dataclass(frozen=True)
class Sibling:
    """Another ModelVersion of the same Model, as far as candidacy cares."""

    name: str
    version: int
    phase: str
    weight: int = 0
    """Share of user traffic it receives as a canary, in percent (0 outside the canary)."""
    revivable: bool = False
    """Superseded while in flight, never served: it becomes the candidate again if every
    version above it fails, so it still outranks the versions below it."""


@dataclass(frozen=True)
class ModelState:
    """The parent Model: its policy and who serves now."""

    spec: s.ModelSpec
    stable_version: int | None = None
    promoted_at: datetime | None = None


@dataclass(frozen=True)
class ServerState:
    """The version's model-server Deployment as observed."""

    exists: bool = False
    replicas: int = 0
    ready_replicas: int = 0
    failure: str | None = None
    """Set when the pods cannot start (crash loop, bad artifact): the message to show."""


@dataclass(frozen=True)
class JobState:
    """The evaluation Job of the current attempt as observed."""

    exists: bool = False
    succeeded: bool = False
    failed: bool = False
    message: str | None = None
    """The evaluation container's termination message (the result JSON on success)."""


@dataclass(frozen=True)
class CanaryWindow:
    """One finished analysis interval of the canary stage: both versions' traffic in it."""

    step: int
    """The canary step the interval belongs to (it started after the step did)."""
    start: datetime
    end: datetime
    stable: Window
    canary: Window
    note: str = ""
    """Pods left out (scrape errors, unknown baseline), for the status message."""
    prometheus: PrometheusResults | None = None
    """The policy's Prometheus queries evaluated at ``end`` (None: the policy has none)."""


@dataclass(frozen=True)
class Observed:
    """Everything a decision depends on."""

    version: s.VersionSpec
    now: datetime
    status: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    model: ModelState | None = None
    siblings: tuple[Sibling, ...] = ()
    server: ServerState = ServerState()
    job: JobState = JobState()
    window: CanaryWindow | None = None
    """Set in the Canary phase when an analysis interval just ended (scraped by the operator)."""

    @property
    def phase(self) -> Phase:
        return Phase(self.status.get("phase") or Phase.PENDING)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the ModelVersion."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What to do now and what the status says afterwards."""

    phase: Phase
    reason: str
    message: str
    actions: tuple[Action, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    """Status fields to set besides phase/reason/message (merge patch; None removes)."""
    event: Event | None = None
    requeue: float = 5.0
    """Seconds until the version should be looked at again."""
    paused: bool = False


@dataclass(frozen=True)
class Timing:
    """Deadlines of the state machine (from the operator's settings)."""

    deploy_timeout: float = 300.0
    """Seconds a candidate may take to become ready before the version fails."""
    poll: float = 1.0
    """Requeue interval while waiting on children."""
    idle: float = 10.0
    """Requeue interval in settled phases."""
