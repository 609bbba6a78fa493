"""Argo CD and the operator never fight, shown on the local cluster with real pods.

Argo CD is played by the built kubectl doing what its controller does with
ServerSideApply=true: server-side apply under the field manager ``argocd-controller``,
server-side dry-run apply to diff, delete to prune. The operator runs under the
ServiceAccount and RBAC of manifests/. Health is computed by the Lua checks of
manifests/argocd in gopher-lua from the live objects.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.rollout import OperatorProcess, get_json, wait_phase
from tests.conftest import Kubectl, wait_for
from tests.e2e.rollout_world import Artifact, serving_version, version_obj
from tests.gitops import luacheck
from tests.gitops.gitops_world import (
    MANAGER,
    children,
    copied_metadata,
    drift,
    git_model,
    run_action,
    spec_writers,
    sync,
    tracked,
    with_fields,
    write_json,
)

pytestmark = pytest.mark.e2e

SLOW = 240.0


def git_version(n: int, art: Artifact, ns: str) -> dict[str, Any]:
    return tracked(version_obj(n, art), ns)


def live_health(kubectl: Kubectl, ns: str, tmp: Path) -> dict[str, dict[str, str]]:
    out = kubectl("get", "models,modelversions", "-n", ns, "-o", "json")
    return luacheck.health(write_json(tmp / "live.json", json.loads(out.stdout)))


def statuses(kubectl: Kubectl, ns: str, tmp: Path) -> dict[str, str]:
    return {key: h["status"] for key, h in live_health(kubectl, ns, tmp).items()}


def phase_events(kubectl: Kubectl, ns: str, name: str, reason: str) -> int:
    """How many times the operator recorded entering a phase (Events with that reason)."""
    events = get_json(kubectl, ns, "events", f"--field-selector=involvedObject.name={name}")
    return sum(int(e.get("count") or 1) for e in events["items"] if e["reason"] == reason)


def evaluation_job(kubectl: Kubectl, ns: str, version: int) -> dict[str, Any]:
    selector = f"modelrollout.io/role=evaluation,modelrollout.io/version={version}"
    out = kubectl("get", "jobs", "-n", ns, "-l", selector, "-o", "json")
    items = json.loads(out.stdout)["items"]
    return dict(items[0]) if items else {}


def test_argocd_sync_rollout_resync_and_prune_never_fight_the_operator(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    artifacts: dict[int, Artifact],
    tmp_path: Path,
) -> None:
    ns = namespace
    commit1 = [git_model(ns), git_version(1, artifacts[1], ns)]
    sync(kubectl, ns, commit1)
    wait_phase(kubectl, ns, "iris-v1", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    wait_for("v1 serving", lambda: serving_version(kubectl, ns) == {"1"}, timeout=60)
    # The Model's summary follows its versions within a tick or two.
    healthy = {"Model/iris": "Healthy", "ModelVersion/iris-v1": "Healthy"}
    wait_for("everything Healthy", lambda: statuses(kubectl, ns, tmp_path) == healthy)

    # After a whole rollout, a re-sync of the same commit changes nothing Git owns.
    assert drift(kubectl, ns, commit1) == []
    for kind, name in (("model", "iris"), ("mv", "iris-v1")):
        assert spec_writers(with_fields(kubectl, ns, kind, name)) == {MANAGER}

    # A Git change that Argo CD would apply shows up as drift (the check is not vacuous).
    changed = copy.deepcopy(commit1)
    changed[0]["spec"]["replicas"] = 3
    assert drift(kubectl, ns, changed) == [
        "Model/iris metadata.generation: 1",
        "Model/iris spec differs",
    ]

    # Commit 2 adds v2; at once the Argo CD "pause" action holds it (Suspended in Argo CD).
    commit2 = [*commit1, git_version(2, artifacts[2], ns)]
    sync(kubectl, ns, commit2)
    patch = run_action(kubectl, ns, "iris-v2", "pause", tmp_path)
    assert patch == {"metadata": {"annotations": {"modelrollout.io/paused": "true"}}}
    wait_for(
        "v2 Suspended",
        lambda: statuses(kubectl, ns, tmp_path)["ModelVersion/iris-v2"] == "Suspended",
    )
    # The action's annotation is not in Git: re-syncs neither see drift nor remove it.
    assert drift(kubectl, ns, commit2) == []
    sync(kubectl, ns, commit2)
    assert (
        get_json(kubectl, ns, "mv", "iris-v2")["metadata"]["annotations"]["modelrollout.io/paused"]
        == "true"
    )
    run_action(kubectl, ns, "iris-v2", "resume", tmp_path)

    # Argo CD re-syncs in the middle of the evaluation, three times.
    wait_for("v2 evaluation Job", lambda: evaluation_job(kubectl, ns, 2), timeout=SLOW)
    before = get_json(kubectl, ns, "mv", "iris-v2")
    job = evaluation_job(kubectl, ns, 2)
    server = get_json(kubectl, ns, "deploy", "iris-v2")
    for _ in range(3):
        assert drift(kubectl, ns, commit2) == []
        sync(kubectl, ns, commit2)
    after = get_json(kubectl, ns, "mv", "iris-v2")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"]["attempt"] == before["status"]["attempt"] == 1
    deployment = get_json(kubectl, ns, "deploy", "iris-v2")
    assert deployment["metadata"]["uid"] == server["metadata"]["uid"]
    rerun = evaluation_job(kubectl, ns, 2)
    assert not rerun or rerun["metadata"]["uid"] == job["metadata"]["uid"]

    v2 = wait_phase(kubectl, ns, "iris-v2", {"Stable", "Failed", "EvaluationFailed"}, SLOW)
    assert v2["status"]["phase"] == "Stable", v2["status"]
    assert v2["status"]["evaluation"]["passed"] is True
    assert v2["status"]["attempt"] == 1
    # One evaluation, one deployment: the re-syncs restarted nothing.
    assert phase_events(kubectl, ns, "iris-v2", "Evaluating") == 1
    assert phase_events(kubectl, ns, "iris-v2", "Deploying") == 1
    wait_for("v2 serving", lambda: serving_version(kubectl, ns) == {"2"}, timeout=60)
    wait_phase(kubectl, ns, "iris-v1", {"Superseded"}, 90)
    assert drift(kubectl, ns, commit2) == []

    # No child carries a label or annotation of a Git-managed parent (so no tracking).
    made = children(kubectl, ns)
    kinds = {c["kind"] for c in made}
    assert {"Deployment", "Service", "Pod"} <= kinds, kinds
    assert [s for c in made for s in copied_metadata(c, commit2)] == []
    for child in made:
        if child["kind"] != "Pod":
            assert child["metadata"].get("ownerReferences"), child["metadata"]["name"]

    # Commit 3 deletes the stable v2 from Git while nothing else can serve: Argo CD prunes.
    commit3 = [commit2[0], commit2[1]]
    kubectl("delete", "mv", "iris-v2", "-n", ns, "--wait=false")

    def deletion_held() -> dict[str, Any] | None:
        mv = get_json(kubectl, ns, "mv", "iris-v2")
        return mv if (mv.get("status") or {}).get("reason") == "DeletionHeld" else None

    held = wait_for("v2 deletion held", deletion_held)
    assert held["metadata"].get("deletionTimestamp")
    assert "no successor" in held["status"]["message"]
    assert serving_version(kubectl, ns) == {"2"}
    health = live_health(kubectl, ns, tmp_path)
    assert health["ModelVersion/iris-v2"]["status"] == "Healthy", health
    assert "DeletionHeld" in health["ModelVersion/iris-v2"]["message"]
    assert drift(kubectl, ns, commit3) == []
    assert get_json(kubectl, ns, "model", "iris")["status"]["stableVersion"] == 2

    # Let the namespace go: drop the hold by hand (as an admin would after a new commit).
    kubectl(
        "patch", "mv", "iris-v2", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
