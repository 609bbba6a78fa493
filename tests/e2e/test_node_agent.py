"""The agent itself: stopping it stops every pod process it started, a restarted agent runs
its pods again, and a killed agent leaves no process behind either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Kubectl, wait_for
from tests.e2e.test_node import IMAGE, apply, get, processes_with

pytestmark = pytest.mark.e2e


class SecondAgent:
    """A second, non-scheduling node agent with its own node name and loopback ranges."""

    def __init__(self, cluster: Any, state: Path, node_name: str) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "modelrollout.cluster.node",
            f"--kubeconfig={cluster.kubeconfig_path}",
            f"--state-dir={state}",
            f"--node-name={node_name}",
            "--pod-network=127.250.0.0/24",
            "--service-network=127.250.1.0/24",
            "--no-schedule",
        ]
        self.log = state.parent / f"{node_name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)


@pytest.fixture
def second_agent(
    cluster: Any, kubectl: Kubectl, tmp_path: Path
) -> Iterator[tuple[SecondAgent, str]]:
    name = f"second-{os.getpid()}"
    agent = SecondAgent(cluster, tmp_path / "node", name)
    yield agent, name
    if agent.proc is not None and agent.proc.poll() is None:
        agent.signal(signal.SIGKILL)
    kubectl("delete", "node", name, "--wait=false", check=False)


def node_ready(kubectl: Kubectl, name: str) -> bool:
    result = kubectl("get", "node", name, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_stopping_or_killing_the_agent_leaves_no_pod_process(
    node: str, namespace: str, kubectl: Kubectl, second_agent: tuple[SecondAgent, str]
) -> None:
    agent, node_name = second_agent
    agent.start()
    wait_for("second node ready", lambda: node_ready(kubectl, node_name))
    sleeper = f"import time; time.sleep(3600)  # {namespace}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper"},
        "spec": {
            "nodeName": node_name,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": IMAGE, "command": ["python", "-c", sleeper]}],
        },
    }
    apply(kubectl, namespace, pod)
    wait_for("pod process", lambda: len(processes_with(namespace)) == 1)
    assert get(kubectl, namespace, "pod", "sleeper")["status"]["podIP"].startswith("127.250.0.")

    agent.signal(signal.SIGTERM)
    assert processes_with(namespace) == []

    agent.start()
    wait_for("pod process after restart", lambda: len(processes_with(namespace)) == 1)
    agent.signal(signal.SIGKILL)
    wait_for("no process after SIGKILL", lambda: processes_with(namespace) == [], timeout=10)
    kubectl("delete", "pod", "sleeper", "-n", namespace, "--grace-period=0", "--force", check=False)
