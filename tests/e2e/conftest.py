"""End-to-end fixtures: the node agent on the session's cluster, so pods really run, and one
operator per test module under the ServiceAccount and RBAC of manifests/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.cluster.rollout import OperatorProcess, install_operator_rbac
from tests.conftest import Kubectl

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster


@pytest.fixture(scope="session")
def node(cluster: LocalCluster) -> Iterator[str]:
    """The node agent on the session cluster, started unless it already runs (a reused
    cluster keeps its agent); yields the Node's name. Stopping the agent stops every pod
    process it started."""
    from modelrollout.cluster.node import (
        NODE_NAME,
        node_agent_running,
        start_node_agent,
        stop_node_agent,
    )

    already = node_agent_running(cluster)
    start_node_agent(cluster)
    yield NODE_NAME
    if not already:
        stop_node_agent(cluster)


@pytest.fixture(scope="module")
def operator(
    cluster: LocalCluster, node: str, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator process for the test module, stopped after it."""
    kubeconfig = install_operator_rbac(kubectl, cluster)
    proc = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator")).start()
    yield proc
    proc.stop()
