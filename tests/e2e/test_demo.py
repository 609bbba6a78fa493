"""``modelrollout demo`` end to end on the session's cluster: the whole story, with its canary
promotion under the demo's traffic and its automatic rollback, ends as told and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.cluster.rollout import get_json
from tests.conftest import Kubectl

from modelrollout import demo

pytestmark = pytest.mark.e2e


def test_demo_story_promotes_a_canary_and_rolls_one_back(
    cluster: Any, node: str, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    run = demo.Demo(demo.DemoSettings(namespace=namespace, keep=True), cluster=cluster)
    try:
        run.setup()
        problems = run.play(demo.train(tmp_path / "artifacts"))
        text = demo.summary(run)
    finally:
        run.teardown()
    print(text)
    assert problems == []
    phases = {
        item["metadata"]["name"]: item["status"]["phase"]
        for item in get_json(kubectl, namespace, "mv")["items"]
    }
    assert phases == {
        "iris-v1": "Superseded",
        "iris-v2": "Stable",
        "iris-v3": "RolledBack",
        "iris-v4": "EvaluationFailed",
    }
    v2 = get_json(kubectl, namespace, "mv", "iris-v2")["status"]["canary"]
    assert [h["verdict"] for h in v2["history"]][-1] == "Passed"
    report = get_json(kubectl, namespace, "mv", "iris-v3")["status"]["canary"]["rollback"]
    assert (report["metric"], report["kind"], report["threshold"]) == ("errorRate", "max", 0.02)
    assert report["value"] > 0.02
    # The demo printed the same numbers, and how long v3 still answered after the interval.
    rolled = [line for line in run.reports if "rolled back on errorRate" in line]
    assert rolled
    assert f"{report['value']:.4g}" in rolled[0]
    assert any("100 % stable" in line for line in run.reports)
    assert "Canary analysis" in text
    assert run.traffic is not None
    assert len(run.traffic.calls) > 100
