"""Run the operator: kopf with our registry, bounded bookkeeping, peering and a liveness probe."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import zlib

import kopf

from modelrollout.operator.alerts import Alerter, AlertSender
from modelrollout.operator.kube import Kube, load_client
from modelrollout.operator.metrics import OperatorMetrics
from modelrollout.operator.registration import register
from modelrollout.operator.settings import OperatorSettings
from modelrollout.operator.telemetry import RolloutTelemetry


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    """Map the command line of `modelrollout operator` onto the settings dataclass."""
    from modelrollout.core.builders import Images

    images = (
        Images(serving=args.serving_image) if getattr(args, "serving_image", None) else Images()
    )
    return OperatorSettings(
        namespaces=tuple(args.namespace or ()),
        peering=args.peering,
        priority=resolve_priority(args.priority),
        standalone=bool(getattr(args, "standalone", False)),
        peering_lifetime=int(getattr(args, "peering_lifetime", 60)),
        health_port=args.health_port,
        health_host=getattr(args, "health_host", "0.0.0.0"),
        metrics_port=int(getattr(args, "metrics_port", 8081)),
        metrics_host=getattr(args, "metrics_host", "0.0.0.0"),
        images=images,
        verbose=bool(args.verbose),
    )


def telemetry(settings: OperatorSettings, kube: Kube) -> RolloutTelemetry:
    """Start ``/metrics`` and the alert workers; the hook that feeds both after each pass."""
    metrics = OperatorMetrics()
    metrics.serve(settings.metrics_host, settings.metrics_port)
    sender = AlertSender(settings.alerts, metrics.count_alert).start()
    alerter = Alerter(sender.submit, settings.alerts.remembered)
    return RolloutTelemetry(kube, alerter, metrics)


def resolve_priority(value: str | int) -> int:
    """``auto`` gives each replica of one Deployment its own priority, from its pod name."""
    if str(value) != "auto":
        return int(value)
    name = os.environ.get("POD_NAME") or socket.gethostname()
    return zlib.crc32(name.encode()) % 1_000_000 + 1


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own bookkeeping lives in status.kopf (bounded), never in growing annotations."""
    ks = kopf.OperatorSettings()
    ks.persistence.finalizer = settings.finalizer
    ks.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    ks.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.last-handled-configuration"
    )
    ks.peering.name = settings.peering
    ks.peering.priority = settings.priority
    ks.peering.standalone = settings.standalone
    ks.peering.mandatory = not settings.standalone
    ks.peering.clusterwide = not settings.namespaces
    ks.peering.stealth = True
    ks.peering.lifetime = settings.peering_lifetime
    ks.posting.level = logging.WARNING
    # Resources are discovered once at start (the CRDs are installed before the operator):
    # no RBAC to list CustomResourceDefinitions or Namespaces is needed.
    ks.scanning.disabled = True
    return ks


def run(args: argparse.Namespace) -> None:
    """Block running the operator until SIGINT/SIGTERM."""
    settings = settings_from_args(args)
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kube = Kube(load_client())
    registry = kopf.OperatorRegistry()
    register(registry, settings, kube, telemetry(settings, kube))
    kopf.run(
        registry=registry,
        settings=kopf_settings(settings),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.standalone,
        priority=settings.priority,
        peering_name=None if settings.standalone else settings.peering,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )
