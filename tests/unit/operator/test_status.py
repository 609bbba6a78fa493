"""Status patches change only what changed; kopf's bookkeeping is kept out of annotations."""

from __future__ import annotations

import argparse
from typing import Any, cast

import kopf
import pytest

from modelrollout.core.spec import Phase
from modelrollout.core.state import Decision
from modelrollout.operator import main, routers, versions

BODY = {
    "metadata": {"name": "iris-v2", "generation": 1},
    "spec": {"model": "iris", "version": 2},
    "status": {},
}


def test_first_patch_sets_phase_conditions_and_since() -> None:
    decision = Decision(Phase.DEPLOYING, "Deploying", "deploying")
    patch = versions.status_patch(BODY, decision, "2026-01-01T00:00:00Z")
    assert patch["phase"] == "Deploying"
    assert patch["phaseSince"] == "2026-01-01T00:00:00Z"
    assert patch["observedGeneration"] == 1
    assert patch["serviceName"] == "iris-v2"
    kinds = {c["type"]: c["status"] for c in patch["conditions"]}
    assert kinds == {"Ready": "False", "Progressing": "True", "Degraded": "False"}


def test_repeating_the_same_decision_patches_nothing() -> None:
    decision = Decision(Phase.DEPLOYING, "Deploying", "deploying")
    first = versions.status_patch(BODY, decision, "2026-01-01T00:00:00Z")
    settled = {**BODY, "status": first}
    assert versions.status_patch(settled, decision, "2026-01-01T00:00:09Z") == {}


def test_kopf_bookkeeping_goes_to_status_and_peering_is_mandatory() -> None:
    args = argparse.Namespace(
        namespace=None, peering="mr", priority=7, health_port=1, verbose=False
    )
    settings = main.settings_from_args(args)
    ks = main.kopf_settings(settings)
    assert isinstance(ks.persistence.progress_storage, kopf.StatusProgressStorage)
    assert isinstance(ks.persistence.diffbase_storage, kopf.StatusDiffBaseStorage)
    assert ks.persistence.finalizer == "modelrollout.io/finalizer"
    assert (ks.peering.name, ks.peering.priority, ks.peering.mandatory) == ("mr", 7, True)
    assert ks.peering.clusterwide


def test_auto_priority_is_stable_per_pod_and_differs_between_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", "modelrollout-operator-5d9c-abcde")
    first = main.resolve_priority("auto")
    assert first == main.resolve_priority("auto")
    monkeypatch.setenv("POD_NAME", "modelrollout-operator-5d9c-fghij")
    assert main.resolve_priority("auto") != first
    assert main.resolve_priority(5) == 5


def test_model_events_on_promotion_and_degradation_only_after_first_sight() -> None:
    from modelrollout.operator import models

    assert models.events(None, {"stableVersion": 2, "phase": "Ready"}) == []
    promoted = models.events(
        {"stableVersion": 1, "phase": "Progressing"}, {"stableVersion": 2, "phase": "Ready"}
    )
    assert [(e.type, e.reason) for e in promoted] == [("Normal", "Promoted"), ("Normal", "Ready")]
    assert promoted[0].message == "version 2 serves (replaces version 1)"
    degraded = models.events(
        {"stableVersion": 2, "phase": "Progressing"},
        {"stableVersion": 2, "phase": "Degraded", "message": "version 3 is EvaluationFailed"},
    )
    assert [(e.type, e.reason) for e in degraded] == [("Warning", "Degraded")]
    same = {"stableVersion": 2, "phase": "Ready"}
    assert models.events(same, same) == []


def _ctx(status: dict[str, Any]) -> versions.Context:
    body = {**BODY, "status": status}
    return versions.Context(cast(Any, None), cast(Any, None), body, cast(Any, None), None, None)


def test_a_route_report_is_folded_into_the_whole_canary_status_once() -> None:
    route = {"kind": "HTTPRoute", "name": "iris", "owned": True, "stableWeight": 100}
    report = routers.Report({**route, "canaryWeight": 0, "error": ""}, None)
    stable = Decision(Phase.STABLE, "Serving", "serving")
    current = {"canary": {"step": 1, "weight": 60, "achievedWeight": 60}}
    done = versions._with_route(_ctx(current), stable, report)
    # The whole canary status with the route; a promotion keeps the last achieved weight.
    assert done.status["canary"] == {**current["canary"], "route": report.route}
    settled = {**BODY, "status": versions.status_patch(_ctx(current).body, done, "t")}
    again = versions._with_route(_ctx(settled["status"]), stable, report)
    assert "canary" not in versions.status_patch(settled, again, "t")


def test_a_route_problem_is_in_the_message_and_the_weight_is_zero() -> None:
    report = routers.Report({"error": "HTTPRoute ns/x not found"}, 0, "HTTPRoute ns/x not found")
    hold = Decision(Phase.CANARY, "CanaryStep", "step 1/2", status={"canary": {"weight": 30}})
    done = versions._with_route(_ctx({}), hold, report)
    assert done.message == "step 1/2; route: HTTPRoute ns/x not found"
    assert done.status["canary"]["achievedWeight"] == 0
    assert done.status["canary"]["weight"] == 30
