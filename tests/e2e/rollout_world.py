"""The e2e world: iris artifacts trained here, the operator running, and a caller of the
stable Service (through its EndpointSlices, as the Service's proxy would pick a pod)."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import Kubectl

C_BY_VERSION = {1: 0.05, 2: 10.0, 3: 0.05}
"""Regularisation per version: v1 acceptable (~0.82 accuracy), v2 better (~0.98), v3 as v1."""


@dataclass(frozen=True)
class Artifact:
    uri: str
    sha256: str


def train_artifacts(directory: Path) -> dict[int, Artifact]:
    """Three skops artifacts trained on iris rows outside the evaluation hold-out."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    train, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    out = {}
    for version, c in C_BY_VERSION.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        model.fit(x[train], y[train])
        path = directory / f"iris-v{version}.skops"
        sio.dump(model, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out[version] = Artifact(path.as_uri(), digest)
    return out


def version_obj(n: int, art: Artifact, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{n}"},
        "spec": {
            "model": "iris",
            "version": n,
            "artifact": {"uri": art.uri, "sha256": art.sha256},
            **spec,
        },
    }


def service_address(kubectl: Kubectl, ns: str, service: str = "iris") -> str:
    """The Service's ClusterIP: the node agent proxies it on loopback, like kube-proxy would."""
    out = kubectl("get", "svc", service, "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
    return out.stdout.strip()


def serving_version(kubectl: Kubectl, ns: str, calls: int = 4) -> set[str]:
    """Call the stable Service a few times: which version answers, and does predict work."""
    host = service_address(kubectl, ns)
    versions = set()
    for _ in range(calls):
        with urllib.request.urlopen(f"http://{host}:8501/v1/models/iris", timeout=5) as answer:
            status = json.loads(answer.read())
        versions.update(s["version"] for s in status["model_version_status"])
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        request = urllib.request.Request(
            f"http://{host}:8501/v1/models/iris:predict",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
            assert "predictions" in json.loads(answer.read())
    return versions
