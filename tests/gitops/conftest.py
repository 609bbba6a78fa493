"""Fixtures of the GitOps tests on the local cluster: the node agent (pods run) and the
operator under the ServiceAccount and RBAC of manifests/, as in tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.cluster.rollout import OperatorProcess, install_operator_rbac
from tests.conftest import Kubectl

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster


@pytest.fixture(scope="module")
def operator(
    cluster: LocalCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The node agent (harmless if it already runs) and one operator replica."""
    from modelrollout.cluster.node import start_node_agent

    start_node_agent(cluster)
    kubeconfig = install_operator_rbac(kubectl, cluster)
    proc = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Any]:
    from tests.e2e.rollout_world import train_artifacts

    return train_artifacts(tmp_path_factory.mktemp("artifacts"))
