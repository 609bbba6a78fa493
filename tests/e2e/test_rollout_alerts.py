"""Alert webhooks and the operator's /metrics end to end: the operator (a subprocess under the
install's RBAC) runs real rollouts on the node agent and POSTs to a receiver on 127.0.0.1.

A promotion, a failed evaluation and a canary rollback each arrive once per webhook, in the
generic JSON and in the Slack format, with the numbers of the decision; the receiver refuses
the first POSTs, so they arrive through the retries. /metrics, scraped over HTTP, shows the
phase series, the canary's weight while it runs, and the judged intervals.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tests.cluster.rollout import (
    OperatorProcess,
    apply_obj,
    iris_model,
    wait_phase,
)
from tests.conftest import Kubectl, wait_for
from tests.e2e.canary_world import load as start_load
from tests.e2e.canary_world import train_log_artifact
from tests.e2e.rollout_world import Artifact, service_address, train_artifacts, version_obj
from tests.e2e.test_rollout import SLOW, stable_is, start_with_v1
from tests.e2e.test_rollout_canary import ANALYSIS
from tests.webhooks import Receiver

from modelrollout.core import analysis

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Artifact]:
    directory = tmp_path_factory.mktemp("artifacts")
    return {**train_artifacts(directory), "log": train_log_artifact(directory)}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(fail=2).start()
    yield rec
    rec.stop()


def alerting_model(receiver: Receiver, ns: str) -> dict[str, Any]:
    """The iris Model with a JSON and a Slack webhook (default events) on the receiver."""
    hooks = [
        {"name": "ops", "url": f"{receiver.url}/{ns}/json"},
        {"name": "chat", "url": f"{receiver.url}/{ns}/slack", "format": "slack"},
    ]
    return iris_model(alerts={"webhooks": hooks})


def scrape(operator: OperatorProcess) -> analysis.Scrape:
    """The operator's /metrics over HTTP, as {(name, sorted labels): value}."""
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return analysis.parse(answer.read().decode())


def sample(operator: OperatorProcess, name: str, **labels: str) -> float | None:
    return scrape(operator).get((name, tuple(sorted(labels.items()))))


def alerts(receiver: Receiver, ns: str, event: str) -> tuple[list[Any], list[Any]]:
    """The accepted JSON and Slack bodies about one event."""
    generic = [b for b in receiver.accepted(f"/{ns}/json") if b["event"] == event]
    slack = [b for b in receiver.accepted(f"/{ns}/slack") if b["text"].startswith(event + ":")]
    return generic, slack


def wait_alerts(receiver: Receiver, ns: str, event: str) -> tuple[dict[str, Any], str]:
    """Wait until both formats arrived once; return the JSON body and the Slack text."""
    wait_for(
        f"{event} alerts on both webhooks",
        lambda: all(alerts(receiver, ns, event)),
        timeout=60,
    )
    generic, slack = alerts(receiver, ns, event)
    assert (len(generic), len(slack)) == (1, 1), (generic, slack)
    return generic[0], str(slack[0]["text"])


def test_promotion_and_failed_evaluation_alert_once_each_with_the_numbers(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[Any, Artifact],
    receiver: Receiver,
) -> None:
    apply_obj(kubectl, namespace, alerting_model(receiver, namespace))
    # The better model first: the weaker one after it fails the no-regression gate.
    apply_obj(kubectl, namespace, version_obj(1, artifacts[2]))
    mv = wait_phase(kubectl, namespace, "iris-v1", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert mv["status"]["phase"] == "Stable", mv["status"]
    promoted, text = wait_alerts(receiver, namespace, "Promoted")
    assert (promoted["model"], promoted["version"], promoted["namespace"]) == (
        "iris",
        1,
        namespace,
    )
    assert (promoted["phase"], promoted["reason"], promoted["stableVersion"]) == (
        "Stable",
        "Promoted",
        1,
    )
    accuracy = mv["status"]["evaluation"]["metrics"]["accuracy"]["candidate"]
    assert promoted["evaluation"]["metrics"]["accuracy"]["candidate"] == accuracy
    assert promoted["evaluation"]["headline"] == mv["status"]["headline"]
    assert mv["status"]["headline"] in text
    assert receiver.failed() == 2  # both formats went through the retries

    apply_obj(kubectl, namespace, version_obj(2, artifacts[1]))
    mv = wait_phase(kubectl, namespace, "iris-v2", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert (mv["status"]["phase"], mv["status"]["reason"]) == ("EvaluationFailed", "GatesFailed")
    failed, text = wait_alerts(receiver, namespace, "EvaluationFailed")
    assert (failed["version"], failed["stableVersion"]) == (2, 1)
    gates = [g["metric"] for g in failed["evaluation"]["failedGates"]]
    assert gates == ["accuracy.max_regression"]
    metric = failed["evaluation"]["metrics"]["accuracy"]
    assert metric == mv["status"]["evaluation"]["metrics"]["accuracy"]
    assert metric["delta"] < -0.1
    assert mv["status"]["headline"] in text
    assert "failed gate accuracy.max_regression" in text
    assert stable_is(kubectl, namespace, 1)

    version = {"namespace": namespace, "model": "iris"}
    phase = "modelrollout_version_phase"
    assert sample(operator, phase, **version, version="1", phase="Stable") == 1
    assert sample(operator, phase, **version, version="2", phase="EvaluationFailed") == 1
    assert sample(operator, phase, **version, version="2", phase="Evaluating") is None
    assert (sample(operator, "modelrollout_alerts_sent_total", result="sent") or 0) >= 4
    assert (sample(operator, "modelrollout_rollout_duration_seconds_count") or 0) >= 1
    # Nothing more arrives for the settled versions (every pass after is no transition).
    assert len(receiver.accepted(f"/{namespace}/json")) == 2


def test_canary_rollback_alerts_with_the_breach_and_metrics_show_the_weight(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[Any, Artifact],
    receiver: Receiver,
) -> None:
    start_with_v1(kubectl, namespace, artifacts, alerting_model(receiver, namespace))
    load = start_load(service_address(kubectl, namespace), glitch_every=5)
    weights: list[float | None] = []
    try:
        canary = {"steps": [{"weight": 50, "durationSeconds": 120}], "analysis": ANALYSIS}
        apply_obj(kubectl, namespace, version_obj(2, artifacts["log"], canary=canary))

        def rolled_back() -> bool:
            weights.append(
                sample(operator, "modelrollout_canary_weight", namespace=namespace, model="iris")
            )
            mv = kubectl(
                "get",
                "mv",
                "iris-v2",
                "-n",
                namespace,
                "-o",
                "jsonpath={.status.phase}",
                check=False,
            ).stdout
            return mv in ("RolledBack", "Stable", "Failed", "EvaluationFailed")

        wait_for("v2's canary ended", rolled_back, timeout=SLOW, interval=0.3)
    finally:
        load.stop()
    mv = wait_phase(kubectl, namespace, "iris-v2", {"RolledBack"}, 10)
    assert mv["status"]["reason"] == "CanaryFailed"
    report = mv["status"]["canary"]["rollback"]
    body, text = wait_alerts(receiver, namespace, "RolledBack")
    assert (body["version"], body["reason"], body["stableVersion"]) == (2, "CanaryFailed", 1)
    rollback = body["rollback"]
    assert (rollback["metric"], rollback["kind"]) == ("errorRate", "max")
    assert rollback["value"] == report["value"] > 0.02
    assert rollback["threshold"] == pytest.approx(0.02)
    assert (rollback["intervalStart"], rollback["intervalEnd"]) == (
        report["intervalStart"],
        report["intervalEnd"],
    )
    assert f"errorRate = {report['value']:.4g} (max limit 0.02" in text
    assert report["intervalEnd"] in text

    assert 50 in weights  # scraped while the canary took half the traffic
    assert sample(operator, "modelrollout_canary_weight", namespace=namespace, model="iris") == 0
    version = {"namespace": namespace, "model": "iris", "version": "2"}
    assert (
        sample(operator, "modelrollout_analysis_intervals_total", **version, result="failed") or 0
    ) >= 1
    assert sample(operator, "modelrollout_version_phase", **version, phase="RolledBack") == 1
    scraped = scrape(operator)
    assert scraped.get(("modelrollout_rollback_duration_seconds_count", ())) == 1
    print(  # the measurement docs/notes/alerts-metrics.md reports (pytest -s)
        json.dumps(
            {
                "rollbackSeconds": scraped[("modelrollout_rollback_duration_seconds_sum", ())],
                "rolloutSecondsSum": scraped[("modelrollout_rollout_duration_seconds_sum", ())],
                "rollouts": scraped[("modelrollout_rollout_duration_seconds_count", ())],
                "alertPosts": len(receiver.posts),
                "alertRetries": receiver.failed(),
            }
        )
    )
