"""The story end to end: real model servers and evaluation Jobs run as pods on the node agent,
the operator runs under the ServiceAccount and RBAC of manifests/.

v1 becomes stable; a better v2 replaces it; a worse v3 is rejected and v2 keeps serving
(checked by calling it). Then the ways a version can go wrong, each leaving the stable
version serving, and an operator killed in the middle of each phase.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.cluster.rollout import (
    OperatorProcess,
    apply_obj,
    get_json,
    iris_model,
    wait_event,
    wait_phase,
)
from tests.conftest import Kubectl, wait_for
from tests.e2e.rollout_world import Artifact, serving_version, train_artifacts, version_obj

pytestmark = pytest.mark.e2e

SLOW = 240.0


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Artifact]:
    return train_artifacts(tmp_path_factory.mktemp("artifacts"))


def model_status(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    return dict(get_json(kubectl, ns, "model", "iris").get("status") or {})


def stable_is(kubectl: Kubectl, ns: str, version: int) -> bool:
    return model_status(kubectl, ns).get("stableVersion") == version and serving_version(
        kubectl, ns
    ) == {str(version)}


def start_with_v1(
    kubectl: Kubectl,
    ns: str,
    artifacts: dict[int, Artifact],
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Model (the example iris one unless given) with v1 stable and serving."""
    apply_obj(kubectl, ns, model or iris_model())
    apply_obj(kubectl, ns, version_obj(1, artifacts[1]))
    mv = wait_phase(kubectl, ns, "iris-v1", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert mv["status"]["phase"] == "Stable", mv["status"]
    wait_for("v1 serving", lambda: stable_is(kubectl, ns, 1), timeout=60)
    return mv


def test_story_v1_stable_v2_promoted_v3_rejected(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    v1 = start_with_v1(kubectl, namespace, artifacts)
    first = v1["status"]["evaluation"]
    assert first["passed"] is True
    assert first["metrics"]["accuracy"]["candidate"] == pytest.approx(0.822, abs=0.01)
    assert "baseline" not in first["metrics"]["accuracy"]  # first version: absolute gates only

    apply_obj(kubectl, namespace, version_obj(2, artifacts[2]))
    v2 = wait_phase(kubectl, namespace, "iris-v2", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert v2["status"]["phase"] == "Stable", v2["status"]
    acc = v2["status"]["evaluation"]["metrics"]["accuracy"]
    assert acc["baseline"] == pytest.approx(first["metrics"]["accuracy"]["candidate"])
    assert acc["delta"] > 0.1
    assert v2["status"]["baselineVersion"] == 1
    wait_for("v2 serving", lambda: stable_is(kubectl, namespace, 2), timeout=60)
    v1 = wait_phase(kubectl, namespace, "iris-v1", {"Superseded"}, 60)
    assert v1["status"]["supersededBy"] == 2
    assert get_json(kubectl, namespace, "deploy", "iris-v1")["spec"]["replicas"] == 0

    apply_obj(kubectl, namespace, version_obj(3, artifacts[3]))
    v3 = wait_phase(kubectl, namespace, "iris-v3", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert v3["status"]["phase"] == "EvaluationFailed", v3["status"]
    failed = [g for g in v3["status"]["evaluation"]["gates"] if not g["passed"]]
    assert [g["metric"] for g in failed] == ["accuracy.max_regression"]
    assert "accuracy" in v3["status"]["message"]
    assert v3["status"]["headline"].startswith("accuracy=0.8222 (-0.15")
    assert stable_is(kubectl, namespace, 2)
    wait_for(
        "v3 candidate removed", lambda: get_json(kubectl, namespace, "deploy", "iris-v3") == {}
    )
    wait_for("Model Degraded", lambda: model_status(kubectl, namespace)["phase"] == "Degraded")
    wait_event(kubectl, namespace, "iris", "Normal", "Promoted")
    wait_event(kubectl, namespace, "iris", "Warning", "Degraded")
    wait_event(kubectl, namespace, "iris-v3", "Warning", "GatesFailed")


@pytest.mark.parametrize(
    "bad",
    [
        ("wrong-sha256", "ServerFailed", "sha256"),
        ("missing-dataset", "EvaluationError", "nowhere.csv"),
        ("crashing-job", "EvaluationError", "no-such-column"),
    ],
)
def test_bad_version_fails_clearly_and_stable_keeps_serving(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[int, Artifact],
    bad: tuple[str, str, str],
) -> None:
    case, reason, words = bad
    start_with_v1(kubectl, namespace, artifacts)
    art = artifacts[2]
    spec: dict[str, Any] = {}
    if case == "wrong-sha256":
        art = Artifact(art.uri, "f" * 64)
    elif case == "missing-dataset":
        spec["evaluation"] = {"dataset": {"uri": "file:///nowhere.csv"}}
    else:
        spec["evaluation"] = {"dataset": {"uri": "sklearn://iris", "labelColumn": "no-such-column"}}
    apply_obj(kubectl, namespace, version_obj(2, art, **spec))
    v2 = wait_phase(kubectl, namespace, "iris-v2", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert (v2["status"]["phase"], v2["status"]["reason"]) == ("Failed", reason)
    assert words in v2["status"]["message"]
    degraded = {c["type"]: c for c in v2["status"]["conditions"]}["Degraded"]
    assert degraded["status"] == "True"
    assert stable_is(kubectl, namespace, 1)


@pytest.mark.parametrize("phase", ["Evaluating", "Promoting", "KeepingWarm"])
def test_operator_killed_mid_phase_resumes_to_the_same_end(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[int, Artifact],
    phase: str,
) -> None:
    apply_obj(kubectl, namespace, iris_model(replicas=2))
    apply_obj(kubectl, namespace, version_obj(1, artifacts[1]))
    wait_phase(kubectl, namespace, "iris-v1", {"Stable"}, SLOW)
    apply_obj(kubectl, namespace, version_obj(2, artifacts[2]))

    def reached() -> bool:
        mv = get_json(kubectl, namespace, "mv", "iris-v2" if phase != "KeepingWarm" else "iris-v1")
        status = mv.get("status") or {}
        return phase in (status.get("phase"), status.get("reason"))

    wait_for(f"phase {phase}", reached, timeout=SLOW, interval=0.2)
    operator.kill()
    operator.start()
    wait_phase(kubectl, namespace, "iris-v2", {"Stable"}, SLOW)
    wait_phase(kubectl, namespace, "iris-v1", {"Superseded"}, 90)
    wait_for("v2 serving", lambda: stable_is(kubectl, namespace, 2), timeout=60)
    assert get_json(kubectl, namespace, "deploy", "iris-v2")["spec"]["replicas"] == 2


def test_stable_deletion_is_held_until_a_successor_serves(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    kubectl("delete", "mv", "iris-v1", "-n", namespace, "--wait=false")
    wait_for(
        "deletion held",
        lambda: (
            (get_json(kubectl, namespace, "mv", "iris-v1").get("status") or {}).get("reason")
            == "DeletionHeld"
        ),
    )
    assert stable_is(kubectl, namespace, 1)
    apply_obj(kubectl, namespace, version_obj(2, artifacts[2]))
    wait_phase(kubectl, namespace, "iris-v2", {"Stable"}, SLOW)
    wait_for("v1 gone", lambda: get_json(kubectl, namespace, "mv", "iris-v1") == {}, timeout=90)
    assert stable_is(kubectl, namespace, 2)


def test_deleting_the_model_removes_what_it_owns(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    assert get_json(kubectl, namespace, "svc", "iris")
    kubectl("delete", "model", "iris", "-n", namespace)
    wait_for("stable Service removed", lambda: get_json(kubectl, namespace, "svc", "iris") == {})
    kubectl("delete", "mv", "iris-v1", "-n", namespace, "--timeout=60s")
    wait_for("v1 server removed", lambda: get_json(kubectl, namespace, "deploy", "iris-v1") == {})


def test_invalid_version_is_rejected_at_apply_and_nothing_runs(
    kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact], operator: OperatorProcess
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    bad = version_obj(0, artifacts[1])
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.version" in result.stderr
    assert get_json(kubectl, namespace, "mv", "iris-v0") == {}
    assert get_json(kubectl, namespace, "deploy", "iris-v0") == {}


def test_manual_promotion_of_a_rejected_version_is_recorded(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    apply_obj(kubectl, namespace, version_obj(2, artifacts[2]))
    wait_phase(kubectl, namespace, "iris-v2", {"Stable"}, SLOW)
    apply_obj(kubectl, namespace, version_obj(3, artifacts[3]))
    wait_phase(kubectl, namespace, "iris-v3", {"EvaluationFailed"}, SLOW)
    kubectl("annotate", "-n", namespace, "mv", "iris-v3", "modelrollout.io/promote=ticket-42")
    v3 = wait_phase(kubectl, namespace, "iris-v3", {"Stable"}, SLOW)
    assert v3["status"]["manualPromotion"] is True
    assert v3["status"]["handled"]["promote"] == "ticket-42"
    assert "manual" in v3["status"]["message"]
    wait_for("v3 serving", lambda: stable_is(kubectl, namespace, 3), timeout=60)
    wait_event(kubectl, namespace, "iris-v3", "Normal", "ManualPromotion")


def test_superseded_candidate_returns_when_its_successor_fails(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[int, Artifact]
) -> None:
    apply_obj(kubectl, namespace, iris_model())
    v2 = version_obj(2, Artifact(artifacts[2].uri, "e" * 64))
    v2["metadata"]["annotations"] = {"modelrollout.io/paused": "true"}
    apply_obj(kubectl, namespace, v2)
    apply_obj(kubectl, namespace, version_obj(1, artifacts[1]))
    wait_phase(kubectl, namespace, "iris-v1", {"Superseded"}, SLOW)
    kubectl("annotate", "-n", namespace, "mv", "iris-v2", "modelrollout.io/paused-")
    wait_phase(kubectl, namespace, "iris-v2", {"Failed"}, SLOW)
    v1 = wait_phase(kubectl, namespace, "iris-v1", {"Stable"}, SLOW)
    assert v1["status"]["attempt"] == 2
    wait_event(kubectl, namespace, "iris-v1", "Normal", "CandidateAgain")
    wait_for("v1 serving", lambda: stable_is(kubectl, namespace, 1), timeout=60)
