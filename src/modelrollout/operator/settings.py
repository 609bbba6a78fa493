"""Settings of the operator component: one dataclass, every field documented."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelrollout.core.builders import Images
from modelrollout.core.state import Timing
from modelrollout.operator.alerts import AlertSettings


@dataclass(frozen=True)
class OperatorSettings:
    """What `modelrollout operator` can be told; defaults suit a small cluster."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches every namespace (cluster-wide)."""
    peering: str = "modelrollout"
    """Name of the kopf peering object shared by the replicas (one of them is active)."""
    priority: int = 0
    """Peering priority: the live replica with the highest priority works, others stand by."""
    peering_lifetime: int = 60
    """Seconds a replica's heartbeat counts; a standby takes over this long after a crash."""
    standalone: bool = False
    """Run without peering (a single replica, e.g. during development)."""
    health_port: int = 8080
    """Port of the liveness endpoint ``/healthz``."""
    health_host: str = "0.0.0.0"
    """Address of the liveness endpoint (0.0.0.0 inside a pod, a loopback address in tests)."""
    metrics_port: int = 8081
    """Port of the operator's Prometheus endpoint ``/metrics``."""
    metrics_host: str = "0.0.0.0"
    """Address of ``/metrics`` (the pod's IP in the Deployment, a loopback address in tests)."""
    alerts: AlertSettings = field(default_factory=AlertSettings)
    """Queue, workers, timeout and retries of the alert webhooks (``spec.alerts``)."""
    tick: float = 1.0
    """Seconds between two looks at each resource (the timer interval)."""
    restart_limit: int = 2
    """Container restarts after which a candidate's model server counts as failed."""
    images: Images = field(default_factory=Images)
    """Images and ports of the model server and the evaluation runner."""
    timing: Timing = field(default_factory=Timing)
    """Deadlines and requeue intervals of the state machine."""
    finalizer: str = "modelrollout.io/finalizer"
    """Finalizer that holds deletion of a stable version while no successor serves."""
    verbose: bool = False
    """Log debug details."""
