"""Pure builders of the Kubernetes objects the operator owns: dataclass in, dict out.

Children carry our own labels only (never the parent's: Argo CD's tracking
label copied onto them would make Argo CD prune them) and an ownerReference,
so deleting the parent removes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelrollout.core.spec import (
    API_VERSION,
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_ROLE,
    LABEL_VERSION,
    MANAGER,
    Artifact,
    Dataset,
)

ROLE_SERVER = "server"
ROLE_EVALUATION = "evaluation"
ROLE_ENDPOINT = "endpoint"
TERMINATION_LOG = "/dev/termination-log"


@dataclass(frozen=True)
class Owner:
    """The parent an object belongs to (garbage collection follows it)."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class Images:
    """Container images and ports of the project's own programs."""

    serving: str = "modelrollout-serving:0.1.0"
    """Image with the `serving` and `evaluate` extras (model server and evaluation runner)."""
    grpc_port: int = 8500
    rest_port: int = 8501
    pull_policy: str = "IfNotPresent"


@dataclass(frozen=True)
class ServerParams:
    """One version's model server."""

    namespace: str
    model: str
    version: int
    artifact: Artifact
    owner: Owner
    replicas: int = 1
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    images: Images = Images()


@dataclass(frozen=True)
class JobParams:
    """One evaluation attempt: the candidate, the optional baseline and the dataset."""

    namespace: str
    name: str
    model: str
    version: int
    dataset: Dataset
    gates: Mapping[str, Any]
    candidate: str
    """host:port of the candidate's gRPC endpoint."""
    owner: Owner
    baseline: str | None = None
    baseline_version: int | None = None
    timeout_seconds: int = 600
    images: Images = Images()


def short_name(*parts: str | int, limit: int = 63) -> str:
    """Join parts with '-', cut to a DNS label with a stable hash suffix when too long."""
    name = "-".join(str(p) for p in parts)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def server_name(model: str, version: int) -> str:
    """Name of a version's Deployment and Service."""
    return short_name(model, f"v{version}")


def job_name(version_name: str, attempt: int) -> str:
    """Name of the evaluation Job of one attempt (a retry gets a new Job)."""
    return short_name(version_name, "eval", attempt)


def labels(model: str, role: str, version: int | None = None) -> dict[str, str]:
    """Our labels only: model, role and (for per-version objects) version."""
    out = {LABEL_MODEL: model, LABEL_ROLE: role, LABEL_MANAGED_BY: MANAGER}
    if version is not None:
        out[LABEL_VERSION] = str(version)
    return out


def owner_reference(owner: Owner) -> dict[str, Any]:
    """Controller reference: the child is deleted with its parent."""
    return {
        "apiVersion": f"{GROUP}/{API_VERSION}",
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(name: str, namespace: str, lbls: Mapping[str, str], owner: Owner) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(lbls),
        "ownerReferences": [owner_reference(owner)],
    }


def server_args(p: ServerParams) -> list[str]:
    """`modelrollout serve` arguments: listen on the pod IP, verify the sha256 first."""
    args = [
        "serve",
        "--host=$(POD_IP)",
        f"--grpc-port={p.images.grpc_port}",
        f"--rest-port={p.images.rest_port}",
        f"--model-name={p.model}",
        f"--model-version={p.version}",
        f"--model-uri={p.artifact.uri}",
        f"--sha256={p.artifact.sha256}",
        f"--format={p.artifact.format}",
        f"--termination-log={TERMINATION_LOG}",
        "--cache-dir=/var/cache/modelrollout",
    ]
    args += [f"--trust={t}" for t in p.artifact.trusted_types]
    if p.artifact.allow_unsafe_formats:
        args.append("--allow-unsafe-pickle")
    return args


def server_deployment(p: ServerParams) -> dict[str, Any]:
    """The model server of one version; ready only once the model is loaded (gRPC health)."""
    name = server_name(p.model, p.version)
    lbls = labels(p.model, ROLE_SERVER, p.version)
    container = {
        "name": "server",
        "image": p.images.serving,
        "imagePullPolicy": p.images.pull_policy,
        "command": ["modelrollout"],
        "args": server_args(p),
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [
            {"name": "grpc", "containerPort": p.images.grpc_port},
            {"name": "http", "containerPort": p.images.rest_port},
        ],
        "readinessProbe": {"grpc": {"port": p.images.grpc_port}, "periodSeconds": 2},
        "resources": {k: dict(v) for k, v in p.resources.items()},
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted(),
        "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/modelrollout"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, p.namespace, lbls, p.owner),
        "spec": {
            "replicas": p.replicas,
            "selector": {"matchLabels": lbls},
            "template": {
                "metadata": {"labels": lbls},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                    "automountServiceAccountToken": False,
                },
            },
        },
    }


def _restricted() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _ports(images: Images) -> list[dict[str, Any]]:
    return [
        {"name": "grpc", "port": images.grpc_port, "targetPort": "grpc"},
        {"name": "http", "port": images.rest_port, "targetPort": "http"},
    ]


def server_service(p: ServerParams) -> dict[str, Any]:
    """Reaches one version's pods only: the evaluation Job's target, no user traffic."""
    name = server_name(p.model, p.version)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, p.namespace, labels(p.model, ROLE_SERVER, p.version), p.owner),
        "spec": {
            "selector": labels(p.model, ROLE_SERVER, p.version),
            "ports": _ports(p.images),
        },
    }


def stable_service(
    namespace: str, model: str, version: int, owner: Owner, images: Images = Images()
) -> dict[str, Any]:
    """The Model's user-facing Service, named after the Model, selecting the stable version."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(model, namespace, labels(model, ROLE_ENDPOINT), owner),
        "spec": {"selector": labels(model, ROLE_SERVER, version), "ports": _ports(images)},
    }


def address(service: str, namespace: str, port: int) -> str:
    """host:port of a Service by its cluster DNS name."""
    return f"{service}.{namespace}.svc:{port}"


def evaluation_args(j: JobParams) -> list[str]:
    """`modelrollout evaluate` arguments: same rows to candidate and baseline, compact result."""
    d = j.dataset
    args = [
        "evaluate",
        f"--dataset={d.uri}",
        f"--format={d.format}",
        f"--model={j.model}",
        f"--candidate={j.candidate}",
        f"--candidate-version={j.version}",
        f"--gates={json.dumps(dict(j.gates), sort_keys=True)}",
        f"--termination-message-path={TERMINATION_LOG}",
    ]
    optional: Sequence[tuple[str, object]] = (
        ("label", d.label_column),
        ("max-rows", d.max_rows),
        ("holdout", d.holdout_fraction),
        ("seed", d.seed if d.holdout_fraction else None),
        ("baseline", j.baseline),
        ("baseline-version", j.baseline_version if j.baseline else None),
    )
    args += [f"--{flag}={value}" for flag, value in optional if value is not None]
    return args


def evaluation_job(j: JobParams) -> dict[str, Any]:
    """One evaluation attempt; never retried by Kubernetes (the result is deterministic)."""
    lbls = labels(j.model, ROLE_EVALUATION, j.version)
    container = {
        "name": "evaluate",
        "image": j.images.serving,
        "imagePullPolicy": j.images.pull_policy,
        "command": ["modelrollout"],
        "args": evaluation_args(j),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(j.name, j.namespace, lbls, j.owner),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": j.timeout_seconds,
            "template": {
                "metadata": {"labels": lbls},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "automountServiceAccountToken": False,
                },
            },
        },
    }
