"""The canary stage end to end: real model servers as pods, the operator scraping their
/metrics, and a load generator calling the stable Service the whole time.

A good v2 walks its 50 % step (both versions answer, the interval passes) and is promoted;
a v2 that rejects inputs v1 accepts fails its first conclusive interval and is rolled back:
traffic returns to v1 first, and v1 answered every request that reached it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.cluster.rollout import (
    OperatorProcess,
    apply_obj,
    get_json,
    wait_event,
    wait_phase,
)
from tests.conftest import Kubectl, wait_for
from tests.e2e.canary_world import load as start_load
from tests.e2e.canary_world import rollback_timing, train_log_artifact, version_errors
from tests.e2e.rollout_world import Artifact, service_address, train_artifacts, version_obj
from tests.e2e.test_rollout import SLOW, model_status, stable_is, start_with_v1

pytestmark = pytest.mark.e2e

ANALYSIS = {
    "intervalSeconds": 5,
    "minRequests": 10,
    "maxInconclusiveSeconds": 60,
    "thresholds": {"errorRate": {"max": 0.02, "maxIncrease": 0.01}},
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Artifact]:
    directory = tmp_path_factory.mktemp("artifacts")
    return {**train_artifacts(directory), "log": train_log_artifact(directory)}


def selector(kubectl: Kubectl, ns: str) -> dict[str, str]:
    return dict(get_json(kubectl, ns, "svc", "iris")["spec"]["selector"])


def test_good_canary_walks_its_step_under_load_and_is_promoted(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    load = start_load(service_address(kubectl, namespace))
    try:
        canary = {"steps": [{"weight": 50, "durationSeconds": 10}], "analysis": ANALYSIS}
        apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=canary))
        mv = wait_phase(kubectl, namespace, "iris-v2", {"Canary", "Stable", "Failed"}, SLOW)
        assert mv["status"]["phase"] == "Canary", mv["status"]
        weights: set[Any] = set()
        open_selectors: list[bool] = []

        def promoted() -> bool:
            weights.add(model_status(kubectl, namespace).get("canaryWeight"))
            open_selectors.append("modelrollout.io/version" not in selector(kubectl, namespace))
            phase = (get_json(kubectl, namespace, "mv", "iris-v2").get("status") or {}).get("phase")
            assert phase in ("Canary", "Promoting", "Stable"), phase
            return phase == "Stable"

        wait_for("v2 promoted after its canary", promoted, timeout=SLOW, interval=0.5)
    finally:
        sent = load.stop()
    status = get_json(kubectl, namespace, "mv", "iris-v2")["status"]
    history = status["canary"]["history"]
    passed = [h for h in history if h["verdict"] == "Passed"]
    assert passed, history
    # Both versions answered through the one Service during the step.
    assert passed[-1]["values"]["requests"] >= 10
    assert passed[-1]["values"]["stable.requests"] >= 10
    assert passed[-1]["values"]["errorRate"] == 0.0
    assert status["canary"]["achievedWeight"] == 50
    assert 50 in weights
    assert any(open_selectors)
    assert selector(kubectl, namespace)["modelrollout.io/version"] == "2"
    assert len(sent) > 50
    assert [s for s in sent if not s.ok] == []
    wait_event(kubectl, namespace, "iris-v2", "Normal", "CanaryStarted")
    wait_for("v2 serving", lambda: stable_is(kubectl, namespace, 2), timeout=60)


def test_canary_that_rejects_inputs_is_rolled_back_and_stable_answers_everything(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    load = start_load(service_address(kubectl, namespace), glitch_every=5)
    try:
        canary = {"steps": [{"weight": 50, "durationSeconds": 120}], "analysis": ANALYSIS}
        apply_obj(kubectl, namespace, version_obj(2, artifacts["log"], canary=canary))
        mv = wait_phase(kubectl, namespace, "iris-v2", {"RolledBack", "Stable", "Failed"}, SLOW)
        assert (mv["status"]["phase"], mv["status"]["reason"]) == ("RolledBack", "CanaryFailed")
        wait_for(
            "stable route restored",
            lambda: selector(kubectl, namespace).get("modelrollout.io/version") == "1",
            timeout=10,
        )
        after = len(load.calls)
        wait_for("traffic after the rollback", lambda: len(load.calls) >= after + 40, timeout=60)
    finally:
        sent = load.stop()
    report = mv["status"]["canary"]["rollback"]
    assert (report["metric"], report["kind"]) == ("errorRate", "max")
    assert report["value"] > 0.02
    assert report["threshold"] == pytest.approx(0.02)
    assert "errorRate" in mv["status"]["message"]
    assert "interval" in report["message"]
    assert mv["status"]["canary"]["weight"] == 0
    wait_event(kubectl, namespace, "iris-v2", "Warning", "CanaryFailed")
    # The canary really took traffic and failed only the glitched rows.
    failures = [s for s in sent if not s.ok]
    assert failures
    assert all(s.tag == "odd" and s.detail.startswith("400") for s in failures), failures[:3]
    # After the rollback every request, glitched ones included, was answered.
    assert all(s.ok for s in sent[after:])
    # v1 answered every request that reached it (its own counters, scraped from its pod).
    requests, errors = version_errors(kubectl, namespace, 1)
    assert requests > 40
    assert errors == 0
    assert stable_is(kubectl, namespace, 1)
    wait_for(
        "canary scaled away",
        lambda: (
            get_json(kubectl, namespace, "deploy", "iris-v2").get("spec", {}).get("replicas")
            in (None, 0)
        ),
        timeout=60,
    )
    svc = kubectl("get", "svc", "iris", "-n", namespace, "-o", "json", "--show-managed-fields")
    fields = json.loads(svc.stdout)["metadata"].get("managedFields") or []
    print(  # the measurement docs/notes/canary-wiring.md reports (pytest -s)
        json.dumps(
            {
                **rollback_timing(report, [s for s in sent if s.tag == "odd"], failures),
                "serviceLastWritten": max((f.get("time") or "" for f in fields), default=""),
                "requests": len(sent),
                "failedGlitched": len(failures),
            }
        )
    )
