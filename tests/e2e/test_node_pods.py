"""What a pod on the local node can rely on: private volumes at shared paths, init
containers, env from the API, probes of every kind, restarts, grace periods, and a clear
answer for images the node cannot run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kubectl, wait_for
from tests.e2e.test_node import (
    IMAGE,
    TESTSERVER,
    apply,
    get,
    job,
    job_condition,
    job_pod,
    processes_with,
)

from modelrollout.cluster.node.containers import runtime_paths

pytestmark = pytest.mark.e2e

REPORT = """
import json, os, socket
report = {
    "owner": open('/mnt/models/owner').read(),
    "hostname": socket.gethostname(),
    "greeting": open('/etc/app/greeting').read(),
    "secret": os.environ['SECRET'],
    "cwd": os.getcwd(),
    "argv": os.environ['GREETING_ARG'],
    "token": len(open('/var/run/secrets/kubernetes.io/serviceaccount/token').read()) > 0,
    "tmp": sorted(os.listdir('/tmp')),
}
open('/dev/termination-log', 'w').write(json.dumps(report))
"""


def worker_job(name: str) -> dict[str, Any]:
    """A Job whose init container writes into /mnt/models and whose main container reports."""
    spec = job(name, ["python", "-c", REPORT])
    pod = spec["spec"]["template"]["spec"]
    mounts = [
        {"name": "models", "mountPath": "/mnt/models"},
        {"name": "app", "mountPath": "/etc/app", "readOnly": True},
        # Like the operator's manifest: /tmp is an emptyDir. The node's own state (and so
        # every other volume's source) may live under the host's /tmp: nothing may vanish.
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    pod["volumes"] = [
        {"name": "models", "emptyDir": {}},
        {"name": "app", "configMap": {"name": "app"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}},
    ]
    pod["initContainers"] = [
        {
            "name": "fetch",
            "image": IMAGE,
            "command": [
                "python",
                "-c",
                "import socket; n = socket.gethostname(); open('owner', 'w').write(n); "
                "open(f'/cache/{n}', 'w').write(n)",
            ],
            "workingDir": "/mnt/models",
            "volumeMounts": [*mounts[:1], {"name": "cache", "mountPath": "/cache"}],
        }
    ]
    main = pod["containers"][0]
    main["volumeMounts"] = mounts
    main["workingDir"] = "/mnt/models"
    main["env"] = [
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "WHO", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING_ARG", "value": "hello $(WHO) $$(WHO)"},
    ]
    return spec


def test_two_pods_see_their_own_volume_at_the_same_path(
    node: str, namespace: str, kubectl: Kubectl, cluster: Any
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app"},
        "data": {"greeting": "hi"},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": "s3cr3t"},
    }
    apply(kubectl, namespace, config, secret, worker_job("a"), worker_job("b"))
    for name in ("a", "b"):
        wait_for(f"job {name}", lambda n=name: job_condition(kubectl, namespace, n) == "Complete")
        pod = job_pod(kubectl, namespace, name)
        message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
        report = json.loads(message)
        pod_name = pod["metadata"]["name"]
        assert report == {
            "owner": pod_name,
            "hostname": pod_name,
            "greeting": "hi",
            "secret": "s3cr3t",
            "cwd": "/mnt/models",
            "argv": f"hello {pod_name} $(WHO)",
            "token": True,
            "tmp": restored_under_tmp(),
        }
        init = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
        assert init["exitCode"] == 0
    assert not Path("/mnt/models/owner").exists()
    claim = cluster.layout.root / "node" / "pvc" / namespace / "cache"
    pods = {job_pod(kubectl, namespace, name)["metadata"]["name"] for name in ("a", "b")}
    assert {p.name for p in claim.iterdir()} == pods  # one claim, shared by both pods


def restored_under_tmp() -> list[str]:
    """What a pod's empty /tmp shows: only the project's own paths the launcher re-exposes."""
    entries = set()
    for path in runtime_paths(Path(sys.prefix)):
        parts = Path(path).parts
        if len(parts) > 2 and parts[:2] == ("/", "tmp"):
            entries.add(parts[2])
    return sorted(entries)


def probed(name: str) -> dict[str, Any]:
    """A pod whose readiness comes from a gRPC health probe and an exec probe, both waiting
    for a file in the pod's own emptyDir."""
    state = [{"name": "state", "mountPath": "/mnt/state"}]
    server = {
        "name": "web",
        "image": IMAGE,
        "command": TESTSERVER,
        "args": [
            "serve",
            "--host",
            "$(POD_IP)",
            "--grpc-port",
            "9000",
            "--ready-file",
            "/mnt/state/ready",
        ],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "volumeMounts": state,
        "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    }
    sidecar = {
        "name": "sidecar",
        "image": IMAGE,
        "command": ["python", "-c", "import time; time.sleep(3600)"],
        "volumeMounts": state,
        "readinessProbe": {
            "exec": {"command": ["test", "-f", "/mnt/state/ready"]},
            "periodSeconds": 1,
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [server, sidecar],
            "volumes": [{"name": "state", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 2,
        },
    }


def container_states(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    status = get(kubectl, namespace, "pod", name).get("status", {})
    return {c["name"]: c for c in status.get("containerStatuses", [])}


def test_grpc_exec_and_tcp_probes_decide_readiness(
    node: str, namespace: str, kubectl: Kubectl, cluster: Any
) -> None:
    apply(kubectl, namespace, probed("probed"))

    def both_running() -> bool:
        states = container_states(kubectl, namespace, "probed")
        return len(states) == 2 and all("running" in s["state"] for s in states.values())

    wait_for("both containers running", both_running)
    pod = get(kubectl, namespace, "pod", "probed")
    assert [s["ready"] for s in container_states(kubectl, namespace, "probed").values()] == [
        False,
        False,
    ]
    ready_file = cluster.layout.root / "node" / "pods" / pod["metadata"]["uid"]
    (ready_file / "volumes" / "state" / "ready").write_text("yes")

    def pod_ready() -> bool:
        conditions = get(kubectl, namespace, "pod", "probed")["status"]["conditions"]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for("pod ready", pod_ready)
    assert all(
        s["restartCount"] == 0 for s in container_states(kubectl, namespace, "probed").values()
    )


def test_images_the_node_cannot_run_wait_with_a_clear_reason(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tfs"},
        "spec": {"containers": [{"name": "tfs", "image": "tensorflow/serving:2.16.1"}]},
    }
    apply(kubectl, namespace, pod)

    def waiting() -> dict[str, Any] | None:
        states = container_states(kubectl, namespace, "tfs")
        return states.get("tfs", {}).get("state", {}).get("waiting")

    reason = wait_for("waiting state", waiting)
    assert reason["reason"] == "ImageNotRunnableLocally"
    assert "tensorflow/serving:2.16.1" in reason["message"]
    assert get(kubectl, namespace, "pod", "tfs")["status"]["phase"] == "Pending"


def test_crashing_container_restarts_with_its_last_exit_recorded(
    node: str, namespace: str, kubectl: Kubectl
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crash"},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [
                {"name": "main", "image": IMAGE, "command": ["python", "-c", "raise SystemExit(3)"]}
            ],
        },
    }
    apply(kubectl, namespace, pod)

    def restarted() -> dict[str, Any] | None:
        main = container_states(kubectl, namespace, "crash").get("main", {})
        return main if main.get("restartCount", 0) >= 1 else None

    main = wait_for("a restart", restarted, timeout=90)
    assert main["lastState"]["terminated"]["exitCode"] == 3
    assert get(kubectl, namespace, "pod", "crash")["status"]["phase"] == "Running"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    node: str, namespace: str, kubectl: Kubectl, cluster: Any
) -> None:
    stubborn = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, signal.SIG_IGN)  # {namespace}\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(3600)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stubborn"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": IMAGE, "command": ["python", "-c", stubborn]}],
        },
    }
    apply(kubectl, namespace, pod)
    wait_for("running", lambda: len(processes_with(namespace)) == 1)
    uid = get(kubectl, namespace, "pod", "stubborn")["metadata"]["uid"]
    log = cluster.layout.root / "node" / "logs" / f"{namespace}_stubborn_{uid}" / "main.log"
    wait_for("SIGTERM ignored", lambda: log.is_file() and "ignoring SIGTERM" in log.read_text())
    kubectl("delete", "pod", "stubborn", "-n", namespace, "--wait=true", "--timeout=60s")
    assert processes_with(namespace) == []  # only SIGKILL could end it
