"""The operator against the real API server, under the ServiceAccount and RBAC of manifests/.

Pods never start here (the model server's image is one no node runs), so these tests
cover what the operator does before a model server is ready (children, labels,
conditions, control annotations, superseding, restarts, peering). The end-to-end story
lives in tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.rollout import (
    NEVER_RUNS,
    OperatorProcess,
    apply_obj,
    get_json,
    install_operator_rbac,
    iris_model,
    iris_version,
    wait_event,
    wait_phase,
)
from tests.conftest import Kubectl, wait_for

pytestmark = pytest.mark.cluster

OUR_LABELS = {
    "modelrollout.io/model",
    "modelrollout.io/version",
    "modelrollout.io/role",
    "app.kubernetes.io/managed-by",
}


@pytest.fixture(scope="module")
def operator_kubeconfig(cluster: Any, kubectl: Kubectl) -> Path:
    return install_operator_rbac(kubectl, cluster)


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log_dir = tmp_path_factory.mktemp("operator")
    proc = OperatorProcess(operator_kubeconfig, log_dir, serving_image=NEVER_RUNS).start()
    yield proc
    proc.stop()


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_candidate_gets_owned_children_with_our_labels_only(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    version = iris_version(1)
    version["metadata"]["labels"] = {"app.kubernetes.io/instance": "argocd-app", "team": "ml"}
    version["metadata"]["annotations"] = {"note": "from git"}
    apply_obj(kubectl, namespace, version)
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Deploying"})
    dep = wait_for("Deployment iris-v1", lambda: get_json(kubectl, namespace, "deploy", "iris-v1"))
    svc = get_json(kubectl, namespace, "svc", "iris-v1")
    for child in (dep, svc):
        assert set(child["metadata"]["labels"]) == OUR_LABELS
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == mv["metadata"]["uid"]
        assert owner["kind"] == "ModelVersion"
    assert dep["spec"]["replicas"] == 1
    cond = conditions(mv)
    assert cond["Progressing"]["status"] == "True"
    assert cond["Ready"]["status"] == "False"
    assert cond["Progressing"]["observedGeneration"] == mv["metadata"]["generation"]
    # The operator never writes the user's metadata beyond its finalizer: no bookkeeping
    # annotations (kopf's progress lives in status.kopf), spec untouched.
    assert mv["metadata"]["annotations"] == {
        "note": "from git",
        "kubectl.kubernetes.io/last-applied-configuration": mv["metadata"]["annotations"][
            "kubectl.kubernetes.io/last-applied-configuration"
        ],
    }
    assert "modelrollout.io/finalizer" in mv["metadata"]["finalizers"]
    assert mv["spec"] == {**version["spec"], "artifact": mv["spec"]["artifact"]}
    wait_event(kubectl, namespace, "iris-v1", "Normal", "Deploying")


def test_version_without_model_waits_and_says_why(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_obj(kubectl, namespace, iris_version(1))

    def reason() -> bool:
        status = get_json(kubectl, namespace, "mv", "iris-v1").get("status") or {}
        return status.get("reason") == "ModelNotFound"

    wait_for("reason ModelNotFound", reason)
    assert get_json(kubectl, namespace, "deploy", "iris-v1") == {}


def test_model_without_dataset_fails_the_version_with_an_actionable_message(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    model = iris_model()
    del model["spec"]["evaluation"]
    apply_obj(kubectl, namespace, model)
    apply_obj(kubectl, namespace, iris_version(1))
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Failed"})
    assert mv["status"]["reason"] == "InvalidSpec"
    assert "spec.evaluation.dataset.uri" in mv["status"]["message"]
    assert conditions(mv)["Degraded"]["status"] == "True"


def test_abort_pause_and_retry_annotations(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    apply_obj(kubectl, namespace, iris_version(1))
    wait_phase(kubectl, namespace, "iris-v1", {"Deploying"})
    kubectl("annotate", "-n", namespace, "mv", "iris-v1", "modelrollout.io/paused=true")
    wait_for(
        "paused",
        lambda: (
            conditions(get_json(kubectl, namespace, "mv", "iris-v1"))["Progressing"]["reason"]
            == "Paused"
        ),
    )
    kubectl("annotate", "-n", namespace, "mv", "iris-v1", "modelrollout.io/abort=first")
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Failed"})
    assert mv["status"]["reason"] == "Aborted"
    assert mv["status"]["handled"]["abort"] == "first"
    wait_for("candidate removed", lambda: get_json(kubectl, namespace, "deploy", "iris-v1") == {})
    kubectl("annotate", "-n", namespace, "mv", "iris-v1", "modelrollout.io/paused-")
    kubectl("annotate", "-n", namespace, "mv", "iris-v1", "modelrollout.io/retry=again")
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Deploying"})
    assert mv["status"]["attempt"] == 2
    assert mv["status"]["handled"]["retry"] == "again"


def test_newer_version_supersedes_one_in_flight_even_across_a_restart(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    apply_obj(kubectl, namespace, iris_version(1))
    wait_phase(kubectl, namespace, "iris-v1", {"Deploying"})
    operator.kill()
    apply_obj(kubectl, namespace, iris_version(2))
    operator.start()
    mv1 = wait_phase(kubectl, namespace, "iris-v1", {"Superseded"})
    assert mv1["status"]["supersededBy"] == 2
    wait_phase(kubectl, namespace, "iris-v2", {"Deploying"})
    wait_for(
        "v1 candidate removed", lambda: get_json(kubectl, namespace, "deploy", "iris-v1") == {}
    )
    model = wait_for(
        "Model status",
        lambda: (
            (get_json(kubectl, namespace, "model", "iris").get("status") or {}).get("canaryVersion")
            == 2
        ),
    )
    assert model


def test_standby_replica_takes_over_when_the_active_one_dies(
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    standby = OperatorProcess(
        operator_kubeconfig, tmp_path, priority=50, serving_image=NEVER_RUNS
    ).start()
    try:
        peering = json.loads(
            kubectl("get", "clusterkopfpeering", "modelrollout", "-o", "json").stdout
        )
        priorities = {p.get("priority") for p in (peering.get("status") or {}).values()}
        assert {100, 50} <= priorities
        operator.kill()
        apply_obj(kubectl, namespace, iris_model())
        apply_obj(kubectl, namespace, iris_version(1))
        wait_phase(kubectl, namespace, "iris-v1", {"Deploying"}, timeout=120)
    finally:
        standby.stop()
        operator.start()


def test_reapplying_the_same_manifests_mid_rollout_changes_nothing(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    apply_obj(kubectl, namespace, iris_version(1))
    before = wait_phase(kubectl, namespace, "iris-v1", {"Deploying"})
    dep = wait_for("Deployment iris-v1", lambda: get_json(kubectl, namespace, "deploy", "iris-v1"))
    for _ in range(3):
        apply_obj(kubectl, namespace, iris_model())
        apply_obj(kubectl, namespace, iris_version(1))
        kubectl(
            "apply",
            "--server-side",
            "--field-manager=argocd-controller",
            "--force-conflicts",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(iris_version(1)),
        )
    after = get_json(kubectl, namespace, "mv", "iris-v1")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"]["attempt"] == before["status"]["attempt"]
    assert after["status"]["phaseSince"] == before["status"]["phaseSince"]
    again = get_json(kubectl, namespace, "deploy", "iris-v1")
    assert again["metadata"]["uid"] == dep["metadata"]["uid"]
