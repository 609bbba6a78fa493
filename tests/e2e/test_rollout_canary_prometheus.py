"""The canary judged by Prometheus, end to end: a real Prometheus scrapes the model-server pods
(file_sd targets kept in sync with the pods' IPs), the operator queries it at every interval
end, and a v2 that rejects inputs v1 accepts is rolled back on the Prometheus error ratio.

The built-in thresholds are left out on purpose, so only the Prometheus query can fail the
canary. A second test points the policy at a closed port: the canary never passes, and the
rollback names the query and the connection error.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
from tests.cluster.rollout import OperatorProcess, apply_obj, wait_phase
from tests.conftest import Kubectl
from tests.e2e.canary_world import load as start_load
from tests.e2e.canary_world import train_log_artifact
from tests.e2e.rollout_world import Artifact, service_address, train_artifacts, version_obj
from tests.e2e.test_rollout import SLOW, start_with_v1
from tests.prometheus_server import PrometheusServer, TargetGroup

pytestmark = pytest.mark.e2e

SELECT = 'namespace="{{namespace}}",model="{{model}}",version="{{version}}"'
ERROR_RATIO = (
    f'(sum(rate(modelrollout_requests_total{{{SELECT},code!="OK"}}[{{{{interval}}}}]))'
    " or vector(0))"
    f" / sum(rate(modelrollout_requests_total{{{SELECT}}}[{{{{interval}}}}]))"
)
"""Share of the version's calls that failed; ``or vector(0)``: no error series yet means 0."""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Artifact]:
    directory = tmp_path_factory.mktemp("artifacts")
    return {**train_artifacts(directory), "log": train_log_artifact(directory)}


class PodTargets:
    """Keeps Prometheus' file_sd targets equal to the namespace's model-server pods (what
    kubernetes_sd_configs with relabelling does in a real cluster), once a second, bounded."""

    def __init__(self, prometheus: PrometheusServer, kubectl: Kubectl, ns: str) -> None:
        self.prometheus, self.kubectl, self.ns = prometheus, kubectl, ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodTargets:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for _ in range(3600):
            if self._stop.is_set():
                return
            self.prometheus.set_targets(self.groups())
            self._stop.wait(1.0)

    def groups(self) -> list[TargetGroup]:
        out = self.kubectl(
            "get", "pods", "-n", self.ns, "-l", "modelrollout.io/role=server", "-o", "json"
        )
        groups = []
        for pod in json.loads(out.stdout)["items"]:
            ip, labels = pod["status"].get("podIP"), pod["metadata"]["labels"]
            if ip and pod["status"].get("phase") == "Running":
                groups.append(
                    TargetGroup(
                        (f"{ip}:8501",),
                        {
                            "namespace": self.ns,
                            "model": labels["modelrollout.io/model"],
                            "version": labels["modelrollout.io/version"],
                        },
                    )
                )
        return groups


def _policy(address: str, hold: int, wait: int) -> dict[str, Any]:
    query = {"name": "errorRatio", "query": ERROR_RATIO, "max": 0.02}
    analysis = {
        "intervalSeconds": 5,
        "minRequests": 10,
        "maxInconclusiveSeconds": wait,
        "prometheus": {"address": address, "queries": [query]},
    }
    return {"steps": [{"weight": 50, "durationSeconds": hold}], "analysis": analysis}


@pytest.mark.prometheus
def test_canary_failing_a_prometheus_query_is_rolled_back_naming_it(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[Any, Artifact],
    prometheus: PrometheusServer,
) -> None:
    with PodTargets(prometheus, kubectl, namespace):
        start_with_v1(kubectl, namespace, artifacts)
        prometheus.wait_targets_up(1)
        load = start_load(service_address(kubectl, namespace), glitch_every=5)
        try:
            canary = _policy(prometheus.address, hold=120, wait=60)
            apply_obj(kubectl, namespace, version_obj(2, artifacts["log"], canary=canary))
            mv = wait_phase(kubectl, namespace, "iris-v2", {"RolledBack", "Stable", "Failed"}, SLOW)
        finally:
            sent = load.stop()
        rss = prometheus.rss_bytes()
    status = mv["status"]
    assert (status["phase"], status["reason"]) == ("RolledBack", "CanaryFailed"), status
    report = status["canary"]["rollback"]
    assert (report["metric"], report["kind"]) == ("prometheus.errorRatio", "max")
    assert report["value"] > 0.02
    assert report["threshold"] == pytest.approx(0.02)
    assert report["stable"] == 0.0  # v1 answered every glitched row
    assert "prometheus.errorRatio" in status["message"]
    failed = [h for h in status["canary"]["history"] if h["verdict"] == "Failed"]
    assert failed[-1]["values"]["prometheus.errorRatio"] == report["value"]
    assert failed[-1]["values"]["stable.prometheus.errorRatio"] == 0.0
    # The canary really took traffic and failed the glitched rows only.
    failures = [s for s in sent if not s.ok]
    assert failures
    assert all(s.tag == "odd" and s.detail.startswith("400") for s in failures), failures[:3]
    print(
        json.dumps(
            {
                "intervals": [
                    (h["verdict"], h["values"].get("prometheus.errorRatio"))
                    for h in status["canary"]["history"]
                ],
                "failingIntervalEnd": report["intervalEnd"],
                "rollbackDecidedAt": report["at"],
                "requests": len(sent),
                "prometheusRssMiB": round(rss / 2**20, 1),
            }
        )
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_prometheus_never_passes_the_canary(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, artifacts: dict[Any, Artifact]
) -> None:
    start_with_v1(kubectl, namespace, artifacts)
    load = start_load(service_address(kubectl, namespace))
    address = f"http://127.0.0.1:{_closed_port()}"
    try:
        canary = _policy(address, hold=5, wait=10)
        apply_obj(kubectl, namespace, version_obj(2, artifacts[2], canary=canary))
        mv = wait_phase(kubectl, namespace, "iris-v2", {"RolledBack", "Stable", "Failed"}, SLOW)
    finally:
        sent = load.stop()
    status = mv["status"]
    assert status["phase"] == "RolledBack", status
    history = status["canary"]["history"]
    assert history
    assert {h["verdict"] for h in history} == {"Inconclusive"}
    reasons = [h.get("reason", "") for h in history]
    assert any(f"prometheus.errorRatio: version 1: {address} unreachable" in r for r in reasons)
    assert "prometheus.errorRatio" in status["message"]
    assert "unreachable" in status["message"]
    assert [s for s in sent if not s.ok] == []  # a good v2: only the provider was missing
