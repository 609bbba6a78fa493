"""End-to-end fixtures: the node agent on the session's cluster, so pods really run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster


@pytest.fixture(scope="session")
def node(cluster: LocalCluster) -> Iterator[str]:
    """The node agent, started on the session cluster (harmless if it already runs);
    yields the Node's name. Stopping it stops every pod process it started."""
    from modelrollout.cluster.node import NODE_NAME, start_node_agent, stop_node_agent

    start_node_agent(cluster)
    yield NODE_NAME
    stop_node_agent(cluster)
