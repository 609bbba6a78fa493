"""The canary's other stories end to end, under a load generator through the stable Service:
a slow v2 and a drifting v2 (both better than v1 offline) are rolled back on their analysis
numbers; a newer version supersedes a running canary; an operator killed mid-step resumes.

Every test checks that the stable version answered every request that reached it (its own
/metrics counters) and that no request through the stable Service failed.
"""

from __future__ import annotations

import json
import time
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
from tests.e2e.canary_world import (
    ROWS,
    SHIFTED,
    TELLTALE,
    load,
    rollback_timing,
    shifted_load,
    train_log_artifact,
    train_slow_artifact,
    version_errors,
)
from tests.e2e.rollout_world import Artifact, service_address, train_artifacts, version_obj
from tests.e2e.test_rollout import SLOW, stable_is, start_with_v1

from modelrollout.traffic import Call, Traffic

pytestmark = pytest.mark.e2e

INTERVAL = {"intervalSeconds": 4, "minRequests": 10, "maxInconclusiveSeconds": 60}
ERRORS = {"errorRate": {"max": 0.02}}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Artifact]:
    directory = tmp_path_factory.mktemp("artifacts")
    return {
        **train_artifacts(directory),
        "log": train_log_artifact(directory),
        "slow": train_slow_artifact(directory),
    }


def canary(weight: int, seconds: int, **thresholds: Any) -> dict[str, Any]:
    analysis = {**INTERVAL, "thresholds": {**ERRORS, **thresholds}}
    return {"steps": [{"weight": weight, "durationSeconds": seconds}], "analysis": analysis}


def pinned_version(kubectl: Kubectl, ns: str) -> str | None:
    """The version the stable Service selects (None: open to every version's pods)."""
    return get_json(kubectl, ns, "svc", "iris")["spec"]["selector"].get("modelrollout.io/version")


def mv_status(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    return dict(get_json(kubectl, ns, "mv", name).get("status") or {})


def assert_stable_answered_everything(sent: list[Call], stable_counts: tuple[int, int]) -> None:
    """No request through the Service failed, and the stable pod (its own /metrics, see
    ``version_errors``) answered many and counted no error itself."""
    assert len(sent) > 50
    assert [s for s in sent if not s.ok] == []
    requests, errors = stable_counts
    assert requests > 20
    assert errors == 0


def wait_flowing(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    """Wait until the candidate's step has judged an interval in which both versions answered."""

    def judged() -> dict[str, Any] | None:
        status = mv_status(kubectl, ns, name)
        assert status.get("phase") in ("Evaluating", "Canary", None, "Pending", "Deploying"), status
        history = (status.get("canary") or {}).get("history") or []
        return status if any(h["verdict"] == "Passed" for h in history) else None

    return dict(wait_for(f"{name} canary taking traffic", judged, timeout=SLOW, interval=0.5))


def rolled_back(kubectl: Kubectl, ns: str, traffic: Traffic) -> dict[str, Any]:
    """Wait for the rollback, then for traffic after it; return the ModelVersion."""
    mv = wait_phase(kubectl, ns, "iris-v2", {"RolledBack", "Stable", "Failed"}, SLOW)
    assert (mv["status"]["phase"], mv["status"]["reason"]) == ("RolledBack", "CanaryFailed")
    wait_for("stable route restored", lambda: pinned_version(kubectl, ns) == "1", timeout=10)
    after = len(traffic.calls)
    wait_for("traffic after the rollback", lambda: len(traffic.calls) >= after + 40, timeout=60)
    return mv


def test_slow_canary_is_rolled_back_on_p99_latency(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    traffic = load(service_address(kubectl, namespace), rows=[*ROWS, TELLTALE])
    try:
        obj = version_obj(
            2, artifacts["slow"], canary=canary(50, 120, latencyP99Seconds={"maxRatio": 4})
        )
        apply_obj(kubectl, namespace, obj)
        mv = rolled_back(kubectl, namespace, traffic)
    finally:
        sent = traffic.stop()
    status = mv["status"]
    acc = status["evaluation"]["metrics"]["accuracy"]
    assert status["evaluation"]["passed"] is True
    assert acc["candidate"] > acc["baseline"]  # better offline, slow only under traffic
    report = status["canary"]["rollback"]
    assert (report["metric"], report["kind"]) == ("latencyP99Seconds", "maxRatio")
    assert report["threshold"] == pytest.approx(4 * report["stable"])
    assert report["value"] > report["threshold"]
    assert "latencyP99Seconds" in status["message"]
    wait_event(kubectl, namespace, "iris-v2", "Warning", "CanaryFailed")
    assert_stable_answered_everything(sent, version_errors(kubectl, namespace, 1))
    # The telltale row names the version that answered it: v1 says 2, the neighbours 1.
    telltale = [s for s in sent if s.row == TELLTALE]
    assert {s.label for s in telltale} == {1, 2}
    by_canary = [s for s in telltale if s.label == 1]
    print(json.dumps({"slow": rollback_timing(report, telltale, by_canary)}))
    assert stable_is(kubectl, namespace, 1)


def test_drifting_canary_is_rolled_back_on_psi(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    traffic = shifted_load(service_address(kubectl, namespace))
    try:
        thresholds = {"jsDistance": {"max": 0.5}, "psi": {"max": 0.25}}  # psi is judged first
        apply_obj(
            kubectl, namespace, version_obj(2, artifacts[2], canary=canary(50, 120, **thresholds))
        )
        mv = rolled_back(kubectl, namespace, traffic)
    finally:
        sent = traffic.stop()
    status = mv["status"]
    assert status["evaluation"]["passed"] is True
    report = status["canary"]["rollback"]
    assert (report["metric"], report["kind"]) == ("psi", "max")
    assert report["value"] > 0.25
    assert report["threshold"] == pytest.approx(0.25)
    failed = [h for h in status["canary"]["history"] if h["verdict"] == "Failed"]
    assert failed[-1]["values"]["jsDistance"] > 0.1
    assert_stable_answered_everything(sent, version_errors(kubectl, namespace, 1))
    # The shifted rows: v1 answers class 2, the canary class 1 (its extrapolation).
    shifted = [s for s in sent if s.tag == "shifted"]
    assert {s.label for s in shifted} == {1, 2}
    by_canary = [s for s in shifted if s.label == 1]
    print(json.dumps({"drift": rollback_timing(report, shifted, by_canary)}))
    assert len(SHIFTED) == 4
    assert stable_is(kubectl, namespace, 1)


def test_newer_version_supersedes_a_running_canary(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    traffic = load(service_address(kubectl, namespace))
    seen: list[tuple[str, str | None]] = []
    try:
        apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=canary(50, 300)))
        flowing = wait_flowing(kubectl, namespace, "iris-v2")
        assert flowing["canary"]["achievedWeight"] == 50
        assert pinned_version(kubectl, namespace) is None
        apply_obj(kubectl, namespace, version_obj(3, artifacts["log"], canary=canary(50, 8)))

        def superseded() -> bool:
            phase = str(mv_status(kubectl, namespace, "iris-v2").get("phase"))
            seen.append((phase, pinned_version(kubectl, namespace)))
            return phase == "Superseded"

        wait_for("v2 superseded", superseded, timeout=60, interval=0.2)
        v3 = wait_phase(kubectl, namespace, "iris-v3", {"Stable", "Failed", "RolledBack"}, SLOW)
        v1_counts = version_errors(kubectl, namespace, 1)  # v1 is kept warm for 10 s
    finally:
        sent = traffic.stop()
    # The route went back to v1 no later than v2 left its canary.
    assert seen[-1] == ("Superseded", "1"), seen[-3:]
    status = v3["status"]
    assert status["phase"] == "Stable", status
    assert status["baselineVersion"] == 1
    assert status["evaluation"]["metrics"]["accuracy"]["baseline"] < 0.9  # v1's, not v2's
    assert [h["verdict"] for h in status["canary"]["history"]][-1] == "Passed"
    assert mv_status(kubectl, namespace, "iris-v2")["reason"]
    wait_event(kubectl, namespace, "iris-v3", "Normal", "CanaryStarted")
    assert_stable_answered_everything(sent, v1_counts)
    assert pinned_version(kubectl, namespace) == "3"
    wait_for("v3 serving", lambda: stable_is(kubectl, namespace, 3), timeout=60)


def test_operator_killed_mid_canary_resumes_and_promotes(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    traffic = load(service_address(kubectl, namespace))
    phases: list[str] = []
    try:
        apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=canary(50, 20)))
        before = wait_flowing(kubectl, namespace, "iris-v2")["canary"]
        operator.kill()
        time.sleep(3)  # traffic keeps flowing to both versions while no operator runs
        assert pinned_version(kubectl, namespace) is None
        operator.start()

        def promoted() -> bool:
            phases.append(str(mv_status(kubectl, namespace, "iris-v2").get("phase") or ""))
            return phases[-1] == "Stable"

        wait_for("v2 promoted after the restart", promoted, timeout=SLOW, interval=0.5)
        v1_counts = version_errors(kubectl, namespace, 1)  # v1 is kept warm for 10 s
    finally:
        sent = traffic.stop()
    assert set(phases) <= {"Canary", "Promoting", "Stable"}, phases
    after = mv_status(kubectl, namespace, "iris-v2")["canary"]
    assert after["startedAt"] == before["startedAt"]  # resumed, not restarted
    starts = [h["start"] for h in after["history"]]
    assert len(starts) == len(set(starts)), after["history"]
    assert all(h["verdict"] for h in after["history"])
    assert len(after["history"]) > len(before["history"])
    assert after["history"][-1]["verdict"] == "Passed"
    reasons = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector=involvedObject.name=iris-v2,reason=CanaryStarted",
        "-o",
        "json",
    )
    assert len(json.loads(reasons.stdout)["items"]) == 1
    assert_stable_answered_everything(sent, v1_counts)
    assert pinned_version(kubectl, namespace) == "2"
