"""The install section of docs/gitops.md works as written against the local cluster.

The `kubectl` lines of its local-cluster block are read from the document and run in order
with the built kubectl (from the repository root, as the reader would), with one change: the
test's own namespace stands in for ``iris`` so runs never collide. The operator then runs
as pods of manifests/ on the node agent, and must answer the example Model.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Kubectl, wait_for
from tests.gitops import luacheck
from tests.gitops.gitops_world import write_json
from tests.gitops.luacheck import REPO

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "gitops.md"


def documented_commands() -> list[list[str]]:
    """The kubectl lines of the first sh block after "On the local cluster"."""
    text = DOC.read_text()
    block = re.search(r"On the local cluster.*?```sh\n(.*?)```", text, re.S)
    assert block, "docs/gitops.md lost its local-cluster install block"
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("kubectl ")]


@pytest.fixture
def installed(cluster: LocalCluster, kubectl: Kubectl) -> Iterator[None]:
    """Removes the operator Deployment afterwards, so no later test shares its peering."""
    from modelrollout.cluster.node import start_node_agent

    start_node_agent(cluster)
    yield
    kubectl("delete", "deployment", "modelrollout-operator", "-n", "modelrollout-system")


def test_documented_install_runs_the_operator_that_answers_the_example(
    installed: None, cluster: LocalCluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    commands = documented_commands()
    assert [c[:3] for c in commands[:2]] == [
        ["kubectl", "apply", "--server-side"],
        ["kubectl", "wait", "--for=condition=Established"],
    ]
    for argv in commands:
        if argv[1:3] == ["create", "namespace"]:
            continue  # the namespace fixture made it
        args = [namespace if a == "iris" else a for a in argv[1:]]
        done = subprocess.run(
            [str(cluster.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig_path}", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stderr}"

    def answered() -> dict[str, Any] | None:
        out = kubectl("get", "model", "iris", "-n", namespace, "-o", "json")
        model = json.loads(out.stdout)
        return dict(model) if (model.get("status") or {}).get("phase") else None

    model = wait_for("the installed operator to answer the Model", answered, timeout=120)
    assert model["status"]["phase"] == "NoStableVersion"
    health = luacheck.health(write_json(tmp_path / "model.json", model))
    assert health["Model/iris"] == {
        "status": "Progressing",
        "message": "NoStableVersion: no version serves yet",
    }
    pods = kubectl("get", "pods", "-n", "modelrollout-system", "-o", "json")
    running = [p for p in json.loads(pods.stdout)["items"] if p["status"]["phase"] == "Running"]
    assert len(running) == 2


def test_readme_install_block_is_the_tested_one() -> None:
    """The README's local install lines are the ones the test above runs, word for word."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"On the local cluster.*?```sh\n(.*?)```", readme, re.S)
    assert block, "README.md lost its local-cluster install block"
    tested = re.search(r"On the local cluster.*?```sh\n(.*?)```", DOC.read_text(), re.S)
    assert tested
    assert block.group(1) == tested.group(1)
