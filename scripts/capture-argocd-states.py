#!/usr/bin/env python3
"""Capture real Model and ModelVersion states for the Argo CD health and action tests.

Brings up a local cluster (its own name), the node agent and the operator under the RBAC of
manifests/, plays a story that passes through every phase the operator reaches today
(Pending, Deploying, Evaluating, paused, Promoting, Stable, KeepingWarm, Superseded,
EvaluationFailed, retry, Failed by a bad artifact, Failed by abort; then, under load through
the stable Service: a two-step canary paused on the way, a bake, a canary rolled back by
glitched rows, a bake rolled back by them; DeletionHeld last), and writes each distinct
(kind, name, phase, reason) it observes to
manifests/argocd/resource_customizations/modelrollout.io/<Kind>/testdata/captured/ (emptied
first, so the directory holds one run). A Model has no reason: its key names the phase of the
version its message is about ("version 6 is Canary"), and whether a bake rollback restored a
lower stable version.

Only managedFields, resourceVersion and kubectl's last-applied annotation are removed (noise
that changes every run); everything else is as the API server returned it.
Usage: .venv/bin/python scripts/capture-argocd-states.py   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "manifests" / "argocd" / "resource_customizations" / "modelrollout.io"
NS = "capture"
SLOW = 300.0
Phases = tuple[str, str]
ANALYSIS = {
    "intervalSeconds": 5,
    "minRequests": 10,
    "maxInconclusiveSeconds": 60,
    "thresholds": {"errorRate": {"max": 0.02, "maxIncrease": 0.01}},
}
"""Short intervals as in tests/e2e/test_rollout_canary.py."""
TWO_STEPS = {
    "steps": [{"weight": 25, "durationSeconds": 10}, {"weight": 50, "durationSeconds": 10}],
    "analysis": ANALYSIS,
}
ONE_STEP = {"steps": [{"weight": 50, "durationSeconds": 10}], "analysis": ANALYSIS}
NO_CANARY = {"steps": [], "analysis": ANALYSIS}


def sanitize(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    for key in ("managedFields", "resourceVersion"):
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    return obj


class Recorder(threading.Thread):
    """Polls both kinds and writes every state it has not written yet."""

    def __init__(self, kubectl: Any) -> None:
        super().__init__(daemon=True)
        self.kubectl = kubectl
        self.seen: set[tuple[str, ...]] = set()
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.poll()
            time.sleep(0.2)

    def poll(self) -> None:
        import yaml

        out = self.kubectl("get", "models,modelversions", "-n", NS, "-o", "json", check=False)
        if out.returncode != 0:
            return
        for item in json.loads(out.stdout)["items"]:
            status = item.get("status") or {}
            deleting = "deleting" if item["metadata"].get("deletionTimestamp") else ""
            key = (
                item["kind"],
                item["metadata"]["name"],
                str(status.get("phase") or "NoStatus"),
                str(status.get("reason") or about(status)),
                deleting,
            )
            if key in self.seen:
                continue
            self.seen.add(key)
            name = "_".join(part for part in key[1:] if part) + ".yaml"
            path = OUT / item["kind"] / "testdata" / "captured" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            header = f"# Captured from a real operator run by scripts/{Path(__file__).name}.\n"
            path.write_text(header + yaml.safe_dump(sanitize(item), sort_keys=False))
            print(f"captured {path.relative_to(REPO)}", flush=True)


def about(status: dict[str, Any]) -> str:
    """The phase of the version a Model's message names ("version 6 is Canary" -> Canary),
    and "StableRestored" once a bake rollback gave the Service back to a lower version."""
    _, found, rest = str(status.get("message") or "").partition(" is ")
    named = rest.split(";")[0].strip() if found else ""
    stable, previous = status.get("stableVersion"), status.get("previousVersion")
    if isinstance(stable, int) and isinstance(previous, int) and previous > stable:
        return "_".join(part for part in (named, "StableRestored") if part)
    return named


def stable_version(kubectl: Any) -> int | None:
    out = kubectl("get", "model", "iris", "-n", NS, "-o", "json", check=False)
    status = json.loads(out.stdout).get("status") or {} if out.returncode == 0 else {}
    return status.get("stableVersion")


def annotate(kubectl: Any, name: str, key: str, value: str) -> None:
    kubectl("annotate", "--overwrite", "-n", NS, "mv", name, f"{key}={value}")


def story(kubectl: Any, artifacts: dict[Any, Any]) -> None:
    from tests.cluster.rollout import apply_obj, iris_model, wait_phase
    from tests.conftest import wait_for
    from tests.e2e.rollout_world import Artifact, version_obj

    def phase(name: str) -> Phases:
        out = kubectl("get", "mv", name, "-n", NS, "-o", "json", check=False)
        status = json.loads(out.stdout).get("status") or {} if out.returncode == 0 else {}
        return str(status.get("phase") or ""), str(status.get("reason") or "")

    apply_obj(kubectl, NS, iris_model())
    time.sleep(3)  # the Model alone: NoStableVersion
    apply_obj(kubectl, NS, version_obj(1, artifacts[1]))
    wait_phase(kubectl, NS, "iris-v1", {"Stable"}, SLOW)
    apply_obj(kubectl, NS, version_obj(2, artifacts[2]))
    wait_for("v2 evaluating", lambda: phase("iris-v2")[0] == "Evaluating", SLOW, 0.2)
    annotate(kubectl, "iris-v2", "modelrollout.io/paused", "true")
    wait_for("v2 paused", lambda: phase("iris-v2")[1] == "Paused", 60, 0.2)
    time.sleep(2)
    annotate(kubectl, "iris-v2", "modelrollout.io/paused", "false")
    wait_phase(kubectl, NS, "iris-v2", {"Stable"}, SLOW)
    wait_phase(kubectl, NS, "iris-v1", {"Superseded"}, 120)
    apply_obj(kubectl, NS, version_obj(3, artifacts[3]))
    wait_phase(kubectl, NS, "iris-v3", {"EvaluationFailed"}, SLOW)
    annotate(kubectl, "iris-v3", "modelrollout.io/retry", "capture-1")
    wait_for("v3 retried", lambda: phase("iris-v3")[0] != "EvaluationFailed", 60, 0.2)
    wait_phase(kubectl, NS, "iris-v3", {"EvaluationFailed"}, SLOW)
    bad = Artifact(artifacts[2].uri, "f" * 64)
    apply_obj(kubectl, NS, version_obj(4, bad))
    wait_phase(kubectl, NS, "iris-v4", {"Failed"}, SLOW)
    apply_obj(kubectl, NS, version_obj(5, artifacts[2]))
    wait_for("v5 deploying", lambda: phase("iris-v5")[0] in {"Deploying", "Evaluating"}, SLOW, 0.2)
    annotate(kubectl, "iris-v5", "modelrollout.io/abort", "capture-1")
    wait_phase(kubectl, NS, "iris-v5", {"Failed"}, 60)
    canary_story(kubectl, artifacts, phase)
    kubectl("delete", "mv", "iris-v6", "-n", NS, "--wait=false")
    wait_for("v6 deletion held", lambda: phase("iris-v6")[1] == "DeletionHeld", 60, 0.2)
    time.sleep(2)


def canary_story(kubectl: Any, artifacts: dict[Any, Any], phase: Callable[[str], Phases]) -> None:
    """Canary, pause, bake and both rollbacks, with the product's load generator calling the
    stable Service throughout (every 5th row glitched while ``glitch`` is set: the log model
    answers those 400, the scaling-only ones answer them)."""
    from tests.cluster.rollout import apply_obj, wait_phase
    from tests.conftest import wait_for
    from tests.e2e.canary_world import SwitchableLoad
    from tests.e2e.rollout_world import service_address, version_obj

    def reason_is(name: str, reason: str) -> bool:
        got = phase(name)
        assert got[0] not in ("Failed", "EvaluationFailed"), (name, got)
        return got[1] == reason

    load = SwitchableLoad(service_address(kubectl, NS))
    try:
        print("v6: good, two canary steps, paused in the first, then a 20 s bake", flush=True)
        bake = {"bakeSeconds": 20}
        apply_obj(kubectl, NS, version_obj(6, artifacts[2], canary=TWO_STEPS, promotion=bake))
        wait_phase(kubectl, NS, "iris-v6", {"Canary"}, SLOW)
        annotate(kubectl, "iris-v6", "modelrollout.io/paused", "true")
        wait_for("v6 canary paused", lambda: reason_is("iris-v6", "Paused"), 60, 0.2)
        time.sleep(2)
        annotate(kubectl, "iris-v6", "modelrollout.io/paused", "false")
        wait_for("v6 baking", lambda: reason_is("iris-v6", "Baking"), SLOW, 0.2)
        wait_for("v6 baked", lambda: reason_is("iris-v6", "Baked"), 120, 0.2)
        print("v7: the log model, one canary step, glitched rows from the start", flush=True)
        load.glitch.set()
        apply_obj(kubectl, NS, version_obj(7, artifacts["log"], canary=ONE_STEP))
        wait_phase(kubectl, NS, "iris-v7", {"RolledBack"}, SLOW)
        load.glitch.clear()
        print("v8: the log model, no canary, a 60 s bake; glitched rows once it bakes", flush=True)
        bake = {"bakeSeconds": 60}
        apply_obj(kubectl, NS, version_obj(8, artifacts["log"], canary=NO_CANARY, promotion=bake))
        wait_for("v8 baking", lambda: reason_is("iris-v8", "Baking"), SLOW, 0.2)
        time.sleep(1)
        load.glitch.set()
        wait_phase(kubectl, NS, "iris-v8", {"RolledBack"}, 90)
        wait_for("v6 the stable version again", lambda: stable_version(kubectl) == 6, 30, 0.2)
        time.sleep(12)  # v6's next pass (idle requeue 10 s) and the Model's summary
    finally:
        calls = load.traffic.stop()
    failed = [c for c in calls if not c.ok]
    print(f"load: {len(calls)} calls, {len(failed)} failed (glitched rows the log model refused)")


def main() -> int:
    from tests.cluster.rollout import OperatorProcess, install_operator_rbac
    from tests.conftest import Kubectl
    from tests.e2e.canary_world import train_log_artifact
    from tests.e2e.rollout_world import train_artifacts

    from modelrollout.cluster.controlplane import LocalCluster
    from modelrollout.cluster.node import start_node_agent, stop_node_agent
    from modelrollout.cluster.settings import ClusterSettings

    work = Path(tempfile.mkdtemp(prefix="argocd-capture-"))
    cluster = LocalCluster(ClusterSettings(name="argocd-capture", state_root=work / "state"))
    cluster.up()
    kubectl = Kubectl(cluster)
    operator = None
    recorder = Recorder(kubectl)
    try:
        start_node_agent(cluster)
        operator = OperatorProcess(install_operator_rbac(kubectl, cluster), work).start()
        kubectl("create", "namespace", NS)
        artifacts: dict[Any, Any] = {**train_artifacts(work), "log": train_log_artifact(work)}
        for kind in ("Model", "ModelVersion"):
            shutil.rmtree(OUT / kind / "testdata" / "captured", ignore_errors=True)
        recorder.start()
        story(kubectl, artifacts)
    finally:
        recorder.stop_event.set()
        if operator is not None:
            operator.stop()
        stop_node_agent(cluster)
        cluster.down()
    print(f"{len(recorder.seen)} states captured; operator log in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
