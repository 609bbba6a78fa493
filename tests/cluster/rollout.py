"""Helpers shared by the operator's cluster and e2e tests: CRDs, example objects, the operator.

The operator runs as a subprocess under a ServiceAccount kubeconfig minted by the
cluster from the RBAC in manifests/, exactly the permissions a real install has.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Kubectl, wait_for

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
SHA = "0" * 64
NEVER_RUNS = "example.invalid/not-a-modelrollout-image:0"
"""An image no node runs (the node agent runs only the project's images): pods stay pending,
so a cluster test sees the phases before a model server is ready, node agent or not."""


def install_crds(kubectl: Kubectl) -> None:
    """Apply crds/ with kustomize (idempotent) and wait until every CRD is Established."""
    kubectl("apply", "-k", str(CRDS))
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                name = doc["metadata"]["name"]
                kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def iris_model(**spec: Any) -> dict[str, Any]:
    """The example Model (examples/iris/model.yaml) with optional overrides of its spec."""
    base = yaml.safe_load((REPO / "examples" / "iris" / "model.yaml").read_text())
    base["spec"].update(spec)
    return dict(base)


def iris_version(n: int, sha256: str = SHA, uri: str | None = None) -> dict[str, Any]:
    """A ModelVersion of the iris Model."""
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{n}"},
        "spec": {
            "model": "iris",
            "version": n,
            "artifact": {"uri": uri or f"file:///models/iris-v{n}.skops", "sha256": sha256},
        },
    }


def deep(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


MANIFESTS = REPO / "manifests" / "base"
OPERATOR_NS = "modelrollout-system"
OPERATOR_SA = "modelrollout-operator"


def install_operator_rbac(kubectl: Kubectl, cluster: Any) -> Path:
    """Apply the ServiceAccount, RBAC and peering object of manifests/base; return a
    kubeconfig that acts as that ServiceAccount (exactly the permissions of an install)."""
    install_crds(kubectl)
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "peering.yaml"):
        kubectl("apply", "-f", str(MANIFESTS / name))
    wait_for(
        "the operator ServiceAccount",
        lambda: kubectl("get", "sa", OPERATOR_SA, "-n", OPERATOR_NS, check=False).returncode == 0,
    )
    return Path(cluster.service_account_kubeconfig(OPERATOR_NS, OPERATOR_SA))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """`modelrollout operator` as a subprocess, as a Deployment's container would run it."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        priority: int = 100,
        serving_image: str = "modelrollout-serving:0.1.0",
    ) -> None:
        self.kubeconfig = kubeconfig
        self.priority = priority
        self.serving_image = serving_image
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_dir / f"operator-{priority}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        args = [
            sys.executable,
            "-m",
            "modelrollout",
            "operator",
            "--all-namespaces",
            "--peering=modelrollout",
            f"--priority={self.priority}",
            "--health-host=127.0.0.1",
            f"--health-port={self.port}",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--peering-lifetime=10",
            f"--serving-image={self.serving_image}",
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(f"operator liveness on port {self.port}", self.healthy, timeout=60)
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited {self.proc.returncode}:\n{self.log_tail()}")
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def get_json(kubectl: Kubectl, ns: str, *what: str) -> dict[str, Any]:
    out = kubectl("get", *what, "-n", ns, "-o", "json", check=False)
    return dict(json.loads(out.stdout)) if out.returncode == 0 else {}


def try_apply(kubectl: Kubectl, ns: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``kubectl apply`` that may be refused: the process, for its return code and stderr."""
    return kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(obj), check=False)


def get_stored(kubectl: Kubectl, ns: str, kind: str, name: str) -> dict[str, Any]:
    """The object as the API server stores it (fails when it is missing)."""
    return dict(json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json").stdout))


def apply_obj(kubectl: Kubectl, ns: str, obj: dict[str, Any]) -> None:
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(obj))


def phase_of(kubectl: Kubectl, ns: str, name: str) -> str:
    return str((get_json(kubectl, ns, "mv", name).get("status") or {}).get("phase") or "")


def wait_phase(
    kubectl: Kubectl, ns: str, name: str, phases: set[str], timeout: float = 90
) -> dict[str, Any]:
    """Wait until the ModelVersion is in one of ``phases``; return the object."""

    def check() -> dict[str, Any] | None:
        obj = get_json(kubectl, ns, "mv", name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    return dict(wait_for(f"{name} in {sorted(phases)}", check, timeout=timeout, interval=0.5))


def event_reasons(kubectl: Kubectl, ns: str, name: str) -> set[tuple[str, str]]:
    """(type, reason) of the Events about one object."""
    events = get_json(kubectl, ns, "events", f"--field-selector=involvedObject.name={name}")
    return {(e["type"], e["reason"]) for e in events.get("items", [])}


def wait_event(kubectl: Kubectl, ns: str, name: str, kind: str, reason: str) -> None:
    """Events are posted asynchronously: wait (bounded) for one with this type and reason."""
    wait_for(
        f"{kind} Event {reason} on {name}",
        lambda: (kind, reason) in event_reasons(kubectl, ns, name),
        timeout=30,
    )
