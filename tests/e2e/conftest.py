"""End-to-end fixtures: the node agent on the session's cluster, so pods really run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

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
