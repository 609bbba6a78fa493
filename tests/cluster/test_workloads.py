"""The real controllers run: Deployment → ReplicaSet → Pods, Job → Pod, garbage collection.

There is no node here (and no scheduler), so the Pods are created but never run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import Kubectl, wait_for

pytestmark = pytest.mark.cluster

IMAGE = "registry.example/modelrollout/never-pulled:1"
"""Nothing pulls images without a node; the name only has to be valid."""


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": IMAGE}]},
            },
        },
    }


def owners(obj: Any) -> list[tuple[str, str]]:
    return [(ref.kind, ref.name) for ref in obj.metadata.owner_references or []]


def test_deployment_creates_replicaset_and_pods(
    namespace: str, kubectl: Kubectl, k8s_api: Any
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(deployment("web", 3)))
    apps: Any = client.AppsV1Api(k8s_api)
    core: Any = client.CoreV1Api(k8s_api)
    replicasets = wait_for(
        "a ReplicaSet owned by the Deployment",
        lambda: apps.list_namespaced_replica_set(namespace, label_selector="app=web").items,
    )
    assert len(replicasets) == 1
    replicaset = replicasets[0]
    assert owners(replicaset) == [("Deployment", "web")]
    assert replicaset.spec.replicas == 3

    def owned_pods() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        mine = [p for p in pods if owners(p) == [("ReplicaSet", replicaset.metadata.name)]]
        return mine if len(mine) == 3 else None

    pods = wait_for("3 Pods owned by the ReplicaSet", owned_pods)
    assert {p.spec.containers[0].image for p in pods} == {IMAGE}
    assert all(p.spec.node_name is None for p in pods)  # no node, nothing binds them
    listed = kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "name").stdout.split()
    assert sorted(listed) == sorted(f"pod/{p.metadata.name}" for p in pods)


def test_scaling_a_deployment_changes_its_pods(namespace: str, kubectl: Kubectl) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(deployment("api", 1)))

    def pod_count() -> int:
        out = kubectl("get", "pods", "-n", namespace, "-l", "app=api", "-o", "name").stdout
        return len(out.split())

    wait_for("1 pod", lambda: pod_count() == 1)
    kubectl("scale", "deployment/api", "--replicas=4", "-n", namespace)
    wait_for("4 pods after scaling up", lambda: pod_count() == 4)


def test_job_creates_its_pod(namespace: str, kubectl: Kubectl, k8s_api: Any) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "eval"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "args": ["evaluate"]}],
                }
            },
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(job))
    core: Any = client.CoreV1Api(k8s_api)
    pods = wait_for(
        "the Job's Pod",
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=eval").items,
    )
    assert len(pods) == 1
    assert owners(pods[0]) == [("Job", "eval")]
    assert pods[0].spec.restart_policy == "Never"
    batch: Any = client.BatchV1Api(k8s_api)
    # The Job controller creates the Pod first and counts it in the Job's status afterwards.
    status = wait_for(
        "the Job's status to count its Pod",
        lambda: (s := batch.read_namespaced_job_status("eval", namespace).status).active and s,
    )
    assert status.active == 1


def test_deleting_a_deployment_garbage_collects_replicaset_and_pods(
    namespace: str, kubectl: Kubectl
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(deployment("gone", 2)))

    def names(kind: str) -> list[str]:
        return kubectl("get", kind, "-n", namespace, "-l", "app=gone", "-o", "name").stdout.split()

    wait_for("2 pods", lambda: len(names("pods")) == 2)
    assert len(names("replicasets")) == 1
    # Background propagation: the API deletes the owner at once, the garbage collector the rest.
    kubectl("delete", "deployment", "gone", "-n", namespace, "--cascade=background")
    wait_for("ReplicaSet garbage-collected", lambda: names("replicasets") == [])
    wait_for("Pods garbage-collected", lambda: names("pods") == [])


def test_garbage_collector_follows_any_owner_reference(namespace: str, k8s_api: Any) -> None:
    core: Any = client.CoreV1Api(k8s_api)
    owner = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}}
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    child = {"metadata": {"name": "child", "ownerReferences": [reference]}, "data": {}}
    core.create_namespaced_config_map(namespace, child)
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        remaining = core.list_namespaced_config_map(namespace).items
        return "child" not in {c.metadata.name for c in remaining}

    wait_for("the child ConfigMap garbage-collected", child_gone)
