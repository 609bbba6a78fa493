"""Helpers shared by the operator's cluster and e2e tests: CRDs, example objects, the operator.

The operator runs as a subprocess under a ServiceAccount kubeconfig minted by the
cluster from the RBAC in manifests/, exactly the permissions a real install has.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Kubectl

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
SHA = "0" * 64


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
