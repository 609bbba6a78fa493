"""The install path: `kubectl apply -k manifests/base` runs two operator replicas as pods
(through the node agent), in-cluster credentials of their ServiceAccount, peered, and they
take a version to Stable. Removes the operator Deployment afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.cluster.rollout import REPO, apply_obj, get_json, iris_model, wait_phase
from tests.conftest import Kubectl, wait_for
from tests.e2e.rollout_world import Artifact, serving_version, train_artifacts, version_obj

pytestmark = pytest.mark.e2e

NS = "modelrollout-system"


@pytest.fixture
def installed(node: str, kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "-k", str(REPO / "manifests" / "base"))
    yield
    kubectl("delete", "deployment", "modelrollout-operator", "-n", NS, "--wait=true")
    wait_for(
        "operator pods gone",
        lambda: (
            not get_json(kubectl, NS, "pods", "-l", "app.kubernetes.io/name=modelrollout-operator")[
                "items"
            ]
        ),
        timeout=90,
    )


def running_pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    pods = get_json(kubectl, NS, "pods", "-l", "app.kubernetes.io/name=modelrollout-operator")
    return [
        p
        for p in pods.get("items", [])
        if all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [{}])
    ]


def test_kustomize_install_runs_two_peered_replicas_that_roll_out(
    installed: None, kubectl: Kubectl, namespace: str, tmp_path: Any
) -> None:
    pods = wait_for("2 ready operator pods", lambda: len(running_pods(kubectl)) == 2, timeout=120)
    assert pods

    def priorities() -> set[int]:
        peering = json.loads(
            kubectl("get", "clusterkopfpeering", "modelrollout", "-o", "json").stdout
        )
        names = {p["metadata"]["name"] for p in running_pods(kubectl)}
        return {
            v["priority"]
            for k, v in (peering.get("status") or {}).items()
            if any(n in k for n in names)
        }

    distinct = wait_for("both replicas in the peering", lambda: len(priorities()) == 2)
    assert distinct
    artifacts: dict[int, Artifact] = train_artifacts(tmp_path)
    apply_obj(kubectl, namespace, iris_model())
    apply_obj(kubectl, namespace, version_obj(1, artifacts[1]))
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Stable", "Failed"}, 240)
    assert mv["status"]["phase"] == "Stable"
    wait_for("v1 serving", lambda: serving_version(kubectl, namespace) == {"1"}, timeout=60)
