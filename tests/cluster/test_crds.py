"""Our CRDs on the real API server: Established, defaults applied, bad objects rejected by name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.cluster.rollout import (
    REPO,
    get_stored,
    iris_model,
    iris_version,
    try_apply,
)
from tests.conftest import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]


def test_valid_objects_are_stored_with_defaults(kubectl: Kubectl, namespace: str) -> None:
    assert try_apply(kubectl, namespace, iris_model()).returncode == 0
    assert try_apply(kubectl, namespace, iris_version(1)).returncode == 0
    model = get_stored(kubectl, namespace, "model", "iris")
    assert model["spec"]["runtime"] == "sklearn"
    assert model["spec"]["replicas"] == 1
    assert model["spec"]["evaluation"]["dataset"]["format"] == "auto"
    assert model["spec"]["evaluation"]["timeoutSeconds"] == 600
    version = get_stored(kubectl, namespace, "mv", "iris-v1")
    assert version["spec"]["artifact"]["format"] == "skops"
    assert version["spec"]["artifact"]["allowUnsafeFormats"] is False
    table = kubectl("get", "modelrollout", "-n", namespace).stdout
    assert "iris-v1" in table
    assert "iris" in table


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda v: v["spec"].update(version=0), "spec.version", "greater than or equal to 1"),
        (
            lambda v: v["spec"]["artifact"].update(sha256="XYZ"),
            "spec.artifact.sha256",
            "should match",
        ),
        (
            lambda v: v["spec"]["artifact"].update(uri="ftp://x/m.skops"),
            "spec.artifact.uri",
            "must start with file:///",
        ),
        (
            lambda v: v["spec"]["artifact"].update(format="pickle"),
            "spec.artifact.format",
            "allowUnsafeFormats",
        ),
        (
            lambda v: v["spec"].update(
                evaluation={"gates": {"metrics": [{"metric": "acuracy", "min": 0.9}]}}
            ),
            "spec.evaluation.gates.metrics[0].metric",
            "Unsupported value",
        ),
        (
            lambda v: v["spec"].update(
                evaluation={"gates": {"metrics": [{"metric": "accuracy", "min": 1.5}]}}
            ),
            "spec.evaluation.gates.metrics[0].min",
            "[0, 1]",
        ),
        (
            lambda v: v["spec"].update(evaluation={"gates": {"metrics": [{"metric": "accuracy"}]}}),
            "spec.evaluation.gates.metrics[0]",
            "at least one of min, max or maxRegression",
        ),
        (
            lambda v: v["spec"].update(canary={"steps": [{"weight": 50}, {"weight": 10}]}),
            "spec.canary.steps",
            "strictly increasing",
        ),
        (
            lambda v: v["spec"].update(canary={"steps": [{"weight": 10}, {"weight": 10}]}),
            "spec.canary.steps",
            "strictly increasing",
        ),
        (
            lambda v: v["spec"].update(evaluation={"dataset": {"uri": "gopher://x"}}),
            "spec.evaluation.dataset.uri",
            "must start with",
        ),
    ],
)
def test_invalid_version_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, mutate: Any, field: str, words: str
) -> None:
    bad = copy.deepcopy(iris_version(9))
    mutate(bad)
    result = try_apply(kubectl, namespace, bad)
    assert result.returncode != 0
    assert field in result.stderr
    assert words in result.stderr
    assert kubectl("get", "mv", "iris-v9", "-n", namespace, check=False).returncode != 0


def test_spec_of_a_version_is_immutable(kubectl: Kubectl, namespace: str) -> None:
    assert try_apply(kubectl, namespace, iris_version(1)).returncode == 0
    changed = iris_version(1)
    changed["spec"]["artifact"]["sha256"] = "1" * 64
    result = try_apply(kubectl, namespace, changed)
    assert result.returncode != 0
    assert "spec is immutable" in result.stderr


def test_status_is_a_subresource(kubectl: Kubectl, namespace: str) -> None:
    obj = iris_version(1)
    obj["status"] = {"phase": "Stable"}
    assert try_apply(kubectl, namespace, obj).returncode == 0
    assert "status" not in get_stored(kubectl, namespace, "mv", "iris-v1")


def test_examples_are_valid(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(REPO / "examples" / "iris")
    )
    assert result.stdout.count("(server dry run)") == 4


def test_kubectl_explain_teaches_the_fields(kubectl: Kubectl) -> None:
    out = kubectl("explain", "modelversion.spec.artifact.sha256").stdout
    assert "verified before" in out
    gates = kubectl("explain", "model.spec.evaluation.gates.metrics.maxRegression").stdout
    assert "worsening against the stable version" in gates
