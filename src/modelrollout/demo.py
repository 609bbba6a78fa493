"""`modelrollout demo`: the whole loop on a local cluster with scikit-learn's bundled iris data.

It brings up the local control plane and node agent, installs the CRDs and the
operator's RBAC from manifests/, runs the operator under that ServiceAccount and
plays the story: v1 becomes stable, a better v2 replaces it, a worse v3 is rejected
while v2 keeps serving. A table of every version's phase and metrics refreshes
while it runs; the end prints a summary with the numbers from status.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrollout import exitcodes

REPO = Path(__file__).resolve().parents[2]
STORY = (
    (1, 0.05, "Stable", "v1: a first model; it becomes stable on absolute gates"),
    (2, 10.0, "Stable", "v2: a better model; it replaces v1 after beating it on the same rows"),
    (3, 0.05, "EvaluationFailed", "v3: a worse model; it is rejected and v2 keeps serving"),
)
"""(version, LogisticRegression C, expected end phase, what the step shows)."""
TERMINAL = {"Stable", "EvaluationFailed", "Failed", "Superseded", "RolledBack"}


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs on."""

    cluster: str = "modelrollout-demo"
    """Local cluster name (its own state dir and ports)."""
    namespace: str = "demo"
    """Namespace of the Model and its versions."""
    keep: bool = False
    """Leave the cluster (and the operator's objects) running at the end."""
    step_timeout: float = 300.0
    """Seconds one version may take to reach its end phase."""
    refresh: float = 1.0
    """Seconds between two redraws of the table."""


def train(directory: Path) -> dict[int, tuple[str, str]]:
    """Train the story's three models on iris rows outside the evaluation hold-out."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    rows, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for version, c, _, _ in STORY:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        model.fit(x[rows], y[rows])
        path = directory / f"iris-v{version}.skops"
        sio.dump(model, path)
        out[version] = (path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def version_manifest(version: int, uri: str, sha256: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{version}"},
        "spec": {"model": "iris", "version": version, "artifact": {"uri": uri, "sha256": sha256}},
    }


class Demo:
    """One run of the story against one local cluster."""

    def __init__(self, settings: DemoSettings) -> None:
        from modelrollout.cluster.controlplane import LocalCluster
        from modelrollout.cluster.settings import ClusterSettings

        self.settings = settings
        self.cluster = LocalCluster(ClusterSettings(name=settings.cluster))
        self.operator: subprocess.Popen[bytes] | None = None
        self.took: dict[int, float] = {}
        """Seconds from `kubectl apply` of each version to its end phase."""

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return str(self.cluster.kubectl(*args, stdin=stdin).stdout)

    def get(self, *what: str) -> dict[str, Any]:
        ns = self.settings.namespace
        result = self.cluster.kubectl("get", *what, "-n", ns, "-o", "json", check=False)
        return dict(json.loads(result.stdout)) if result.returncode == 0 else {}

    def setup(self) -> None:
        """Cluster, node agent, CRDs, RBAC, namespace, operator."""
        from modelrollout.cluster.node import start_node_agent

        say(f"starting local cluster {self.settings.cluster!r} (etcd, kube-apiserver, ...)")
        self.cluster.up()
        start_node_agent(self.cluster)
        say("installing CRDs and the operator's ServiceAccount + RBAC (manifests/base)")
        self.kubectl("apply", "-k", str(REPO / "crds"))
        for crd in ("models.modelrollout.io", "modelversions.modelrollout.io"):
            self.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        base = REPO / "manifests" / "base"
        for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "peering.yaml"):
            self.kubectl("apply", "-f", str(base / name))
        ns = self.settings.namespace
        self.cluster.kubectl("create", "namespace", ns, check=False)
        self.start_operator()

    def start_operator(self) -> None:
        """The operator as a process with exactly the ServiceAccount's permissions."""
        kubeconfig = _retry(
            lambda: self.cluster.service_account_kubeconfig(
                "modelrollout-system", "modelrollout-operator"
            )
        )
        log = self.cluster.layout.run / "demo-operator.log"
        args = [sys.executable, "-m", "modelrollout", "operator", "--all-namespaces"]
        args += ["--health-host=127.0.0.1", "--health-port=0", "--peering=modelrollout"]
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        with log.open("ab") as out:
            self.operator = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        say(f"operator running as modelrollout-system/modelrollout-operator (log: {log})")

    def play(self, artifacts: dict[int, tuple[str, str]]) -> list[str]:
        """Apply the Model, then each version; wait for its end phase while drawing."""
        ns = self.settings.namespace
        model = (REPO / "examples" / "iris" / "model.yaml").read_text()
        self.kubectl("apply", "-n", ns, "-f", "-", stdin=model)
        problems = []
        for version, _, expected, story in STORY:
            say(story)
            uri, sha = artifacts[version]
            manifest = json.dumps(version_manifest(version, uri, sha))
            started = time.monotonic()
            self.kubectl("apply", "-n", ns, "-f", "-", stdin=manifest)
            phase = self.watch(f"iris-v{version}")
            self.took[version] = time.monotonic() - started
            if phase != expected:
                problems.append(f"v{version} ended {phase or 'nowhere'}, expected {expected}")
        say("v2 serves; v1 stays warm for the Model's keepPreviousSeconds, then is superseded")
        if self.watch("iris-v1", until={"Superseded"}) != "Superseded":
            problems.append("v1 was not superseded")
        return problems

    def watch(self, name: str, until: set[str] = TERMINAL) -> str:
        """Redraw the table until ``name`` reaches one of ``until`` (bounded)."""
        deadline = time.monotonic() + self.settings.step_timeout
        phase = ""
        while time.monotonic() < deadline:
            if self.operator is not None and self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.operator.returncode}")
            versions = self.get("modelversions").get("items", [])
            draw(self.get("model", "iris"), versions)
            mine = [v for v in versions if v["metadata"]["name"] == name]
            phase = str(((mine[0].get("status") or {}) if mine else {}).get("phase") or "")
            if phase in until:
                return phase
            time.sleep(self.settings.refresh)
        return phase

    def serving(self) -> str:
        """Ask the Model's Service which version answers (through the Service's address)."""
        ip = self.kubectl(
            "get", "svc", "iris", "-n", self.settings.namespace, "-o", "jsonpath={.spec.clusterIP}"
        ).strip()
        with urllib.request.urlopen(f"http://{ip}:8501/v1/models/iris", timeout=5) as answer:
            status = json.loads(answer.read())
        return ", ".join(s["version"] for s in status["model_version_status"])

    def teardown(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.terminate()
            self.operator.wait(timeout=20)
        if self.settings.keep:
            say(f'cluster kept: eval "$(modelrollout cluster env --name {self.settings.cluster})"')
        else:
            self.cluster.down()


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _retry(call: Callable[[], Path], attempts: int = 30) -> Path:
    """The ServiceAccount appears a moment after it is applied: retry the token request."""
    for _ in range(attempts - 1):
        try:
            return call()
        except Exception:  # any failure here means "not there yet"
            time.sleep(1)
    return call()


def rows(versions: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One table row per version, in version order (pure; tested)."""
    out: list[tuple[str, ...]] = []
    for item in sorted(versions, key=lambda v: int(v["spec"]["version"])):
        status = item.get("status") or {}
        out.append(
            (
                item["metadata"]["name"],
                str(item["spec"]["version"]),
                str(status.get("phase") or "Pending"),
                str(status.get("headline") or ""),
                str(status.get("message") or "")[:70],
            )
        )
    return out


def draw(model: dict[str, Any], versions: list[dict[str, Any]]) -> None:
    status = model.get("status") or {}
    header = ("VERSION", "#", "PHASE", "METRIC", "MESSAGE")
    table = [header, *rows(versions)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        f"model iris: {status.get('phase', '?')}, stable version {status.get('stableVersion', '-')}"
    ]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    if sys.stdout.isatty():
        sys.stdout.write("\x1b[2J\x1b[H")
    print("\n".join(lines), flush=True)


def summary(demo: Demo) -> str:
    """The numbers behind every decision, from status."""
    lines = ["", "Summary"]
    for item in sorted(
        demo.get("modelversions").get("items", []), key=lambda v: v["spec"]["version"]
    ):
        status = item.get("status") or {}
        evaluation = status.get("evaluation") or {}
        acc = (evaluation.get("metrics") or {}).get("accuracy") or {}
        base = (
            f" vs {acc['baseline']:.4f} (v{status.get('baselineVersion')})"
            if "baseline" in acc
            else ""
        )
        number = int(item["spec"]["version"])
        took = f" (decided {demo.took[number]:.0f} s after apply)" if number in demo.took else ""
        lines.append(
            f"  v{number}: {status.get('phase')}{took}; accuracy "
            f"{acc.get('candidate', float('nan')):.4f}{base}; {status.get('message', '')}"
        )
    lines.append(f"  the Model's Service answers with version {demo.serving()}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Play the story; exit 0 when every version ended as the story says."""
    settings = DemoSettings(keep=bool(getattr(args, "keep", False)))
    demo = Demo(settings)
    try:
        demo.setup()
        artifacts = train(demo.cluster.layout.root / "artifacts")
        problems = demo.play(artifacts)
        print(summary(demo))
    finally:
        demo.teardown()
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return exitcodes.FAILURE if problems else exitcodes.OK
