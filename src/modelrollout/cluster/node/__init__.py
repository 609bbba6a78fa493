"""The local node agent: runs the project's own pods as processes on this machine.

A kubelet needs a container runtime; the project's pods run the project's own
programs, which this machine can run directly from the virtualenv. See
docs/notes/node-agent.md for the contract pods can rely on.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster

COMPONENT = "node-agent"
"""Name of the agent's process record in the cluster's run dir (``down`` stops it)."""
NODE_NAME = "modelrollout-node"
READY_TIMEOUT = 60.0


def start_node_agent(cluster: LocalCluster, node_name: str = NODE_NAME) -> None:
    """Start the agent as a supervised component of cluster; return once its Node is Ready.

    Harmless when it already runs. ``cluster.down()`` stops it (SIGTERM: the agent
    stops every pod process it started).
    """
    from modelrollout.cluster.node.settings import networks_for
    from modelrollout.cluster.process import Component

    component = Component(COMPONENT, cluster.layout.run)
    pods, services = networks_for(cluster.name)
    argv = [
        sys.executable,
        "-m",
        "modelrollout.cluster.node",
        f"--kubeconfig={cluster.kubeconfig_path}",
        f"--state-dir={cluster.layout.root / 'node'}",
        f"--node-name={node_name}",
        f"--pod-network={pods}",
        f"--service-network={services}",
    ]
    component.start(argv)
    started = time.time() - 1.0
    component.wait_healthy(lambda: node_ready(cluster, node_name, started), READY_TIMEOUT)


def node_agent_running(cluster: LocalCluster) -> bool:
    """Whether the cluster's node agent component runs."""
    from modelrollout.cluster.process import Component

    return Component(COMPONENT, cluster.layout.run).running()


def stop_node_agent(cluster: LocalCluster) -> None:
    """Stop the agent (and so every pod process); the control plane keeps running."""
    from modelrollout.cluster.process import Component

    Component(COMPONENT, cluster.layout.run).stop(cluster.settings.stop_timeout)


def node_ready(cluster: LocalCluster, node_name: str, since: float) -> bool:
    """Whether the Node reports Ready with a heartbeat written after since (epoch seconds)."""
    from datetime import datetime

    from modelrollout.cluster.rest import ApiError

    try:
        node = cluster.admin_client().json("GET", f"/api/v1/nodes/{node_name}")
    except (ApiError, OSError):
        return False
    for cond in node.get("status", {}).get("conditions", []):
        if cond["type"] == "Ready" and cond["status"] == "True":
            beat = datetime.fromisoformat(cond["lastHeartbeatTime"].replace("Z", "+00:00"))
            return beat.timestamp() >= since
    return False
