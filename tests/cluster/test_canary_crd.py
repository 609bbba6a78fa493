"""The canary policy on the real API server: stored (not pruned) with defaults, bad ones refused,
and exactly what ``spec.merged_canary`` reads back."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.core import spec as s
from tests.cluster.rollout import get_stored, iris_model, iris_version, try_apply
from tests.conftest import Kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crds")]

POLICY = {
    "steps": [{"weight": 10}, {"weight": 50, "durationSeconds": 30}],
    "analysis": {
        "failureLimit": 2,
        "thresholds": {"errorRate": {"max": 0.05}, "jsDistance": {"max": 0.2}},
    },
}


def test_canary_policy_is_kept_with_defaults_and_merged_with_the_override(
    kubectl: Kubectl, namespace: str
) -> None:
    assert try_apply(kubectl, namespace, iris_model(canary=POLICY)).returncode == 0
    version = iris_version(1)
    version["spec"]["canary"] = {"analysis": {"minRequests": 5, "intervalSeconds": 7}}
    # The override's schema has no defaults: a field it leaves out keeps the Model's value.
    assert try_apply(kubectl, namespace, version).returncode == 0
    model = s.model_from_body(get_stored(kubectl, namespace, "model", "iris"))
    stored = s.version_from_body(get_stored(kubectl, namespace, "mv", "iris-v1"))
    analysis = model.canary["analysis"]
    assert analysis["thresholds"] == POLICY["analysis"]["thresholds"]  # not pruned
    assert (analysis["intervalSeconds"], analysis["maxInconclusiveSeconds"]) == (30, 300)
    assert model.canary["steps"][0]["durationSeconds"] == 60
    merged = s.merged_canary(model.canary, stored.canary)
    assert [st.weight for st in merged.steps] == [10, 50]
    assert (merged.min_requests, merged.interval_seconds) == (5, 7.0)
    assert merged.failure_limit == 2
    assert {th.metric for th in merged.thresholds} == {"errorRate", "jsDistance"}


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"steps": [{"weight": 50}, {"weight": 20}]}, "strictly increasing weights"),
        ({"steps": [{"weight": 0}]}, "should be greater than or equal to 1"),
        ({"analysis": {"failureLimit": 0}}, "should be greater than or equal to 1"),
        ({"analysis": {"thresholds": {"errorRate": {"max": -1}}}}, "greater than or equal to 0"),
    ],
    ids=["decreasing", "zero-weight", "failure-limit", "negative-threshold"],
)
def test_bad_canary_policy_is_refused_by_name(
    kubectl: Kubectl, namespace: str, policy: dict[str, Any], words: str
) -> None:
    out = try_apply(kubectl, namespace, iris_model(canary=policy))
    assert out.returncode != 0
    assert "spec.canary" in out.stderr
    assert words in out.stderr


def test_evaluation_override_keeps_the_models_values_it_leaves_out(
    kubectl: Kubectl, namespace: str
) -> None:
    """API-server defaults in the override would replace the Model's timeout and format."""
    model_obj = iris_model()
    model_obj["spec"]["evaluation"]["timeoutSeconds"] = 120
    model_obj["spec"]["evaluation"]["dataset"]["format"] = "csv"
    assert try_apply(kubectl, namespace, model_obj).returncode == 0
    version = iris_version(1)
    version["spec"]["evaluation"] = {"dataset": {"uri": "file:///data/other.csv"}}
    assert try_apply(kubectl, namespace, version).returncode == 0
    model = s.model_from_body(get_stored(kubectl, namespace, "model", "iris"))
    stored = s.version_from_body(get_stored(kubectl, namespace, "mv", "iris-v1"))
    merged = s.merged_evaluation(model.evaluation, stored.evaluation)
    assert merged.timeout_seconds == 120
    assert merged.dataset is not None
    assert (merged.dataset.uri, merged.dataset.format) == ("file:///data/other.csv", "csv")
