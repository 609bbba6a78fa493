"""Builders emit objects that own only our labels, point at their parent and run our CLI."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from modelrollout.core import builders as b
from modelrollout.core.spec import LABEL_MODEL, LABEL_ROLE, LABEL_VERSION, Artifact, Dataset

OWNER = b.Owner("ModelVersion", "iris-v2", "uid-2")
ART = Artifact(uri="file:///m/iris-2.skops", sha256="d" * 64, trusted_types=("a.B",))


def server(**kw: object) -> b.ServerParams:
    base: dict[str, object] = {
        "namespace": "ns",
        "model": "iris",
        "version": 2,
        "artifact": ART,
        "owner": OWNER,
    }
    return b.ServerParams(**{**base, **kw})  # type: ignore[arg-type]


def test_deployment_labels_selector_owner_and_probe() -> None:
    dep = b.server_deployment(server(replicas=3))
    meta = dep["metadata"]
    assert meta["name"] == "iris-v2"
    assert meta["labels"][LABEL_MODEL] == "iris"
    assert meta["labels"][LABEL_VERSION] == "2"
    assert meta["labels"][LABEL_ROLE] == "server"
    assert meta["ownerReferences"][0]["uid"] == "uid-2"
    assert meta["ownerReferences"][0]["controller"] is True
    spec = dep["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 8500
    assert container["terminationMessagePath"] == b.TERMINATION_LOG
    assert "--host=$(POD_IP)" in container["args"]
    assert f"--sha256={'d' * 64}" in container["args"]
    assert "--trust=a.B" in container["args"]
    assert "--allow-unsafe-pickle" not in container["args"]


def test_unsafe_format_only_with_explicit_opt_in() -> None:
    art = Artifact(uri="file:///m.pkl", sha256="e" * 64, format="pickle", allow_unsafe_formats=True)
    args = b.server_args(server(artifact=art))
    assert "--allow-unsafe-pickle" in args
    assert "--format=pickle" in args


def test_version_service_and_stable_service_select_the_right_pods() -> None:
    svc = b.server_service(server())
    assert svc["spec"]["selector"] == {
        LABEL_MODEL: "iris",
        LABEL_ROLE: "server",
        LABEL_VERSION: "2",
        "app.kubernetes.io/managed-by": "modelrollout",
    }
    stable = b.stable_service("ns", "iris", 7, b.Owner("Model", "iris", "m"))
    assert stable["metadata"]["name"] == "iris"
    assert stable["metadata"]["labels"][LABEL_ROLE] == "endpoint"
    assert stable["spec"]["selector"][LABEL_VERSION] == "7"
    assert stable["metadata"]["ownerReferences"][0]["kind"] == "Model"


def test_evaluation_job_runs_once_with_candidate_and_baseline() -> None:
    params = b.JobParams(
        namespace="ns",
        name=b.job_name("iris-v2", 1),
        model="iris",
        version=2,
        dataset=Dataset(uri="sklearn://iris", holdout_fraction=0.3, seed=7),
        gates={"metrics": [{"metric": "accuracy", "min": 0.9}]},
        candidate=b.address("iris-v2", "ns", 8500),
        baseline=b.address("iris-v1", "ns", 8500),
        baseline_version=1,
        owner=OWNER,
        timeout_seconds=120,
    )
    job = b.evaluation_job(params)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 120
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    args = pod["containers"][0]["args"]
    assert args[0] == "evaluate"
    assert "--candidate=iris-v2.ns.svc:8500" in args
    assert "--baseline=iris-v1.ns.svc:8500" in args
    assert "--holdout=0.3" in args
    assert "--seed=7" in args
    gates = next(a for a in args if a.startswith("--gates="))
    assert json.loads(gates.removeprefix("--gates=")) == params.gates
    assert job["metadata"]["labels"][LABEL_ROLE] == "evaluation"


def test_first_version_job_has_no_baseline() -> None:
    params = b.JobParams(
        namespace="ns",
        name="j",
        model="iris",
        version=1,
        dataset=Dataset(uri="sklearn://iris"),
        gates={},
        candidate="c:8500",
        owner=OWNER,
    )
    assert not any(a.startswith("--baseline") for a in b.evaluation_args(params))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=300))
def test_short_names_are_dns_labels_and_stable(name: str) -> None:
    out = b.short_name(name, "eval", 12)
    assert len(out) <= 63
    assert out == b.short_name(name, "eval", 12)
    if len(f"{name}-eval-12") <= 63:
        assert out == f"{name}-eval-12"
