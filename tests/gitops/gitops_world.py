"""What Argo CD does to a cluster, done with the built kubectl: server-side apply of the Git
manifests under Argo CD's field manager, its server-side dry-run diff, and pruning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.rollout import REPO
from tests.conftest import Kubectl

MANAGER = "argocd-controller"
"""The field manager Argo CD's application controller applies with (ServerSideApply=true)."""
APP = "iris"
GIT_LABELS = {"app.kubernetes.io/instance": APP, "team": "ml-platform"}
"""Labels in Git: Argo CD's label tracking would add the first; users add their own."""


def tracked(obj: dict[str, Any], ns: str) -> dict[str, Any]:
    """The manifest as Argo CD applies it: with its tracking annotation and the Git labels."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {}).update(GIT_LABELS)
    meta.setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = (
        f"{APP}:modelrollout.io/{kind}:{ns}/{name}"
    )
    return obj


def git_model(ns: str) -> dict[str, Any]:
    model = yaml.safe_load((REPO / "examples" / "iris" / "model.yaml").read_text())
    return tracked(dict(model), ns)


def manifests(objs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


def sync(kubectl: Kubectl, ns: str, objs: list[dict[str, Any]]) -> None:
    """Argo CD's sync with ServerSideApply=true (no --force-conflicts: a conflict fails)."""
    kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "-n", ns, "-f", "-",
        stdin=manifests(objs),
    )  # fmt: skip


def dry_run(kubectl: Kubectl, ns: str, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects as a server-side apply would leave them (what Argo CD's SSA diff uses)."""
    out = kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "--dry-run=server",
        "--show-managed-fields", "-n", ns, "-o", "json", "-f", "-",
        stdin=manifests(objs),
    )  # fmt: skip
    doc = json.loads(out.stdout)
    return list(doc["items"]) if doc.get("kind", "").endswith("List") else [doc]


def with_fields(kubectl: Kubectl, ns: str, kind: str, name: str) -> dict[str, Any]:
    """The live object with its managedFields (kubectl hides them by default)."""
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields")
    return dict(json.loads(out.stdout))


def owned_fields(obj: dict[str, Any], manager: str) -> list[Any]:
    """fieldsV1 of every managedFields entry of ``manager`` (operation and subresource too)."""
    return [
        (m.get("operation"), m.get("subresource", ""), m.get("fieldsV1"))
        for m in obj["metadata"].get("managedFields") or []
        if m.get("manager") == manager
    ]


def drift(kubectl: Kubectl, ns: str, objs: list[dict[str, Any]]) -> list[str]:
    """What a re-sync of ``objs`` would change in Git-owned parts; empty when nothing."""
    problems = []
    for would in dry_run(kubectl, ns, objs):
        kind, name = would["kind"], would["metadata"]["name"]
        live = with_fields(kubectl, ns, kind.lower(), name)
        if not owned_fields(live, MANAGER):
            problems.append(f"{kind}/{name} has no fields owned by {MANAGER}")
        for what in ("generation", "labels", "annotations"):
            if would["metadata"].get(what) != live["metadata"].get(what):
                problems.append(f"{kind}/{name} metadata.{what}: {live['metadata'].get(what)}")
        if would.get("spec") != live.get("spec"):
            problems.append(f"{kind}/{name} spec differs")
        if owned_fields(would, MANAGER) != owned_fields(live, MANAGER):
            problems.append(f"{kind}/{name} fields owned by {MANAGER} would change")
    return problems


def spec_writers(obj: dict[str, Any]) -> set[str]:
    """Managers that own any field under spec."""
    return {
        str(m.get("manager"))
        for m in obj["metadata"].get("managedFields") or []
        if "f:spec" in (m.get("fieldsV1") or {})
    }


def children(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    """Every object the operator made for the iris model (and the pods under them)."""
    out = kubectl(
        "get", "deployments,replicasets,services,jobs,pods", "-n", ns,
        "-l", "modelrollout.io/model=iris", "-o", "json",
    )  # fmt: skip
    return list(json.loads(out.stdout)["items"])


def copied_metadata(child: dict[str, Any], parents: list[dict[str, Any]]) -> list[str]:
    """Label or annotation keys the child shares with a Git-managed parent."""
    meta = child["metadata"]
    shared = []
    for parent in parents:
        for what in ("labels", "annotations"):
            keys = set(parent["metadata"].get(what) or {}) & set(meta.get(what) or {})
            shared += [f"{meta['name']}: {what} {k}" for k in sorted(keys)]
    return shared


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def merge_patch(before: Any, after: Any) -> Any:
    """The RFC 7386 merge patch that turns before into after (what Argo CD sends for an action)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value)
    return patch


def run_action(kubectl: Kubectl, ns: str, name: str, action: str, tmp: Path) -> dict[str, Any]:
    """Run a ModelVersion resource action as Argo CD's API server does: the action's Lua on
    the live object, then a merge patch of the difference. Returns the patch."""
    from tests.gitops import luacheck

    live = json.loads(kubectl("get", "mv", name, "-n", ns, "-o", "json").stdout)
    changed = luacheck.action(action, write_json(tmp / f"{name}.json", live))
    patch = merge_patch(live, changed)
    kubectl(
        "patch", "mv", name, "-n", ns, "--type=merge", "--field-manager=argocd-server",
        "-p", json.dumps(patch),
    )  # fmt: skip
    return dict(patch)
